package devstack

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEdgeAnswersRunningJobsFromMemoryOnlyUntilTheyChange runs the stack on
// both stores with the edge keeping jobs for an hour: a running job is
// answered from the edge's memory, yet a read after core changed it (the
// download failing, which the edge does not see) shows the change, a read
// right after a cancel through the edge shows the cancel, and another user
// still gets 404.
func TestEdgeAnswersRunningJobsFromMemoryOnlyUntilTheyChange(t *testing.T) {
	t.Parallel()
	long := func(c *Config) { c.JobCacheTTL = time.Hour }
	for name, start := range map[string]func() testStack{
		"postgres": func() testStack { return startStackWith(t, "yt-dlp", long) },
		"sqlite":   func() testStack { return startSingleBoxWith(t, "yt-dlp", long) },
	} {
		t.Run(name, func(t *testing.T) {
			s := start()
			c := client{t: t, base: s.EdgeURL, key: s.APIKey}
			otherKey, _ := newUser(t, c, "other")
			other := client{t: t, base: s.EdgeURL, key: otherKey}

			// Media that hangs until released, then is gone: the job stays
			// in its download stage, then core moves it on by itself.
			release := make(chan struct{})
			media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
				http.NotFound(w, r)
			}))
			defer media.Close()
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			a := c.create(media.URL + "/a.ogg").ID
			c.waitFor(a, 30*time.Second, func(j jobJSON) bool { return j.Status == "downloading" })
			require.Equal(t, "downloading", c.get(a).Status)
			require.Equal(t, "downloading", c.get(a).Status, "answered from memory")
			code, _ := other.do("GET", "/v1/jobs/"+a, nil)
			require.Equal(t, http.StatusNotFound, code, "another user's job, remembered or not")

			close(release)
			// Core fails the download; the feed tells the edge, which drops
			// its copy. Without the feed this read would say "downloading"
			// for the hour the edge keeps jobs.
			c.waitFor(a, time.Minute, func(j jobJSON) bool { return j.Status != "downloading" })

			hang := hangingServer(t)
			b := c.create(hang + "/b.ogg").ID
			c.waitFor(b, 30*time.Second, func(j jobJSON) bool { return j.Status == "downloading" })
			require.Equal(t, "downloading", c.get(b).Status, "answered from memory")
			code, body := c.do("DELETE", "/v1/jobs/"+b, nil)
			require.Equal(t, http.StatusOK, code, string(body))
			require.Equal(t, "cancelled", c.get(b).Status, "the read right after the cancel")
			code, _ = other.do("GET", "/v1/jobs/"+b, nil)
			require.Equal(t, http.StatusNotFound, code)
		})
	}
}

// hangingServer serves media that never arrives until the test ends: its
// header comes at once, its body never. (Withholding the header instead,
// it held a download for only 30 s: core stops awaiting response headers
// then and requeues the job, which left the edge benchmark's running job
// queued, not downloading, at the benchmark's end.)
func hangingServer(t testing.TB) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/ogg")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets srv.Close finish
	return srv.URL
}
