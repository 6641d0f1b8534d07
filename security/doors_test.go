package security

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/errcode"
)

const librivox = "/usr/share/pocketsphinx/test/data/librivox"

func clip(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(librivox + "/sense_and_sensibility_01_austen_64kb-0880.wav")
	require.NoError(t, err, "pocketsphinx-testdata is installed by make deps")
	return b
}

// TestDoorsOfTheProductionStack throws the small attacks at one stack.
func TestDoorsOfTheProductionStack(t *testing.T) {
	t.Parallel()
	s := startStack(t, options{})

	// Model names that are paths, or that no gpu-node offers, are refused
	// before a job exists: no node is ever told to load /etc/passwd.
	t.Run("ModelNamesArePathsOrUnknown", func(t *testing.T) {
		for _, o := range []map[string]any{
			{"engine": "whispercpp", "model": "/etc/passwd"},
			{"model": "../../../../etc/passwd"},
			{"model": "models\\..\\secret"},
			{"model": "no-such-model"},
			{"engine": "no-such-engine"},
		} {
			o["url"] = "https://media.example/a.wav"
			r := call(t, http.MethodPost, s.edgeURL+"/v1/jobs", s.key, o)
			require.Equal(t, http.StatusBadRequest, r.status, "%v: %s", o, r.body)
			require.Contains(t, []string{"unsupported_option", "invalid_argument"}, r.code(), "%v", o)
		}
	})

	// Metrics are served on their own listeners, never on the public ports.
	t.Run("MetricsAreNotOnThePublicPorts", func(t *testing.T) {
		for _, u := range []string{s.edgeURL + "/metrics", s.coreURL + "/metrics"} {
			r := call(t, http.MethodGet, u, "", nil)
			require.Equal(t, http.StatusNotFound, r.status, u)
			require.NotContains(t, string(r.body), "go_goroutines", u)
		}
		for _, u := range []string{s.edgeMetrics, s.coreMetrics, s.nodeMetrics} {
			require.Positive(t, metric(t, u, "go_goroutines"), u)
		}
	})

	// Sign-in's next parameter cannot send an admin off the site.
	t.Run("DashboardSignInStaysOnSite", func(t *testing.T) {
		for _, next := range []string{
			"/admin/../%5Cevil.example", "/admin/..%2F..%2F%5Cevil.example", "/\\evil.example", "//evil.example",
			"/admin/../\\evil.example", "https://evil.example/admin/", "/admin/%2e%2e/%5cevil.example", "/admin/\t/evil.example",
			"/admin//evil.example", "\\\\evil.example", "/admin/\\/evil.example", "javascript:alert(1)",
		} {
			form := url.Values{"key": {s.adminKey}, "next": {next}}
			req, err := http.NewRequest(http.MethodPost, s.coreURL+"/admin/login", strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := do(t, req)
			require.Equal(t, http.StatusSeeOther, r.status, "%q: %s", next, r.body)
			loc := r.header.Get("Location")
			target, err := url.Parse(loc)
			require.NoError(t, err)
			require.Empty(t, target.Host, "%q sent the browser to %q", next, loc)
			require.True(t, strings.HasPrefix(loc, "/admin/") && !strings.ContainsAny(loc, "\\") && !strings.HasPrefix(loc, "//"),
				"%q sent the browser to %q", next, loc)
		}
	})

	// Guessing admin keys at the sign-in form is limited per address.
	t.Run("DashboardSignInIsLimitedPerAddress", func(t *testing.T) {
		limited := 0
		for range 60 {
			form := url.Values{"key": {"ytc_" + rand.Text()}}
			req, err := http.NewRequest(http.MethodPost, s.coreURL+"/admin/login", strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if r := do(t, req); r.status == http.StatusTooManyRequests {
				limited++
			}
		}
		require.GreaterOrEqual(t, limited, 40, "60 wrong keys in a row from one address")
	})

	// A flood of made-up keys from one address is refused before it costs
	// key lookups, and the valid key keeps working through it.
	t.Run("MadeUpKeyFloodIsLimitedPerAddress", func(t *testing.T) {
		var unauthorized, limited, other atomic.Int64
		var wg sync.WaitGroup
		keys := make(chan string)
		for range 16 {
			wg.Go(func() {
				for k := range keys {
					req, _ := http.NewRequest(http.MethodGet, s.edgeURL+"/v1/jobs", nil)
					req.Header.Set("Authorization", "Bearer "+k)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						other.Add(1)
						continue
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusUnauthorized:
						unauthorized.Add(1)
					case http.StatusTooManyRequests:
						if resp.Header.Get("Retry-After") == "" {
							other.Add(1) // a 429 must say when to come back
							continue
						}
						limited.Add(1)
					default:
						other.Add(1)
					}
				}
			})
		}
		for range 1500 {
			keys <- "ytc_" + rand.Text()
		}
		close(keys)
		wg.Wait()
		t.Logf("1500 made-up keys from one address: %d unauthorized, %d limited, %d other", unauthorized.Load(), limited.Load(), other.Load())
		require.GreaterOrEqual(t, limited.Load(), int64(1000))
		require.Zero(t, other.Load())
		r := call(t, http.MethodGet, s.edgeURL+"/v1/jobs", s.key, nil)
		require.Equal(t, http.StatusOK, r.status, "the valid key, from the same address, during the flood: %s", r.body)
	})
}

// TestEventStreamsAreCappedPerKey holds open as many event streams as the
// plan allows, on a job that waits for a gpu-node that is not there; one
// more is refused with too_many_streams, and closing one lets a new one in.
func TestEventStreamsAreCappedPerKey(t *testing.T) {
	t.Parallel()
	s := startStack(t, options{noNode: true})
	s.admin("set-plan", "--name", "streams", "--max-streams", "3")
	s.admin("assign-plan", "--user", "alice", "--plan", "streams")
	key := s.admin("create-key", "--user", "alice") // a fresh key: no cached plan at the edge
	id, err := s.upload(key, "clip.wav", clip(t))
	require.NoError(t, err)

	open := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, s.edgeURL+"/v1/jobs/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			// Read the first event so the stream is surely held.
			_, err = bufio.NewReader(resp.Body).ReadString('\n')
		}
		return resp, err
	}
	var held []*http.Response
	for range 3 {
		resp, err := open()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		held = append(held, resp)
	}
	resp, err := open()
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "a fourth stream")
	held[0].Body.Close()
	require.Eventually(t, func() bool {
		resp, err := open()
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 100*time.Millisecond, "a closed stream frees its place")
	for _, h := range held[1:] {
		h.Body.Close()
	}
}

// TestUploadsRefusedByQuotaStoreNothing: a user at their concurrent-jobs
// limit uploads a file; the refusal comes before the file is stored, so the
// bucket holds only the first upload.
func TestUploadsRefusedByQuotaStoreNothing(t *testing.T) {
	t.Parallel()
	s := startStack(t, options{noNode: true})
	s.admin("set-plan", "--name", "one", "--max-concurrent", "1")
	s.admin("assign-plan", "--user", "alice", "--plan", "one")
	key := s.admin("create-key", "--user", "alice")
	_, err := s.upload(key, "first.wav", clip(t))
	require.NoError(t, err)
	other := append(clip(t), make([]byte, 3200)...) // other bytes: another content key
	_, err = s.upload(key, "second.wav", other)
	require.Equal(t, "quota_exceeded", errcode.OfConnect(err), "%v", err)

	mc, err := minio.New(s.minio.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.minio.AccessKey, s.minio.SecretKey, "")})
	require.NoError(t, err)
	n := 0
	for o := range mc.ListObjects(context.Background(), "ytcaption", minio.ListObjectsOptions{Prefix: "uploads/", Recursive: true}) {
		require.NoError(t, o.Err)
		n++
	}
	require.Equal(t, 1, n, "objects under uploads/")
}

// TestTranscriptCacheKeepsUsersApart: alice transcribes an upload named
// after something private; bob uploads the same bytes under another name.
// Bob's job may reuse the transcript, but it names neither alice's job nor
// her file. (That a translation or a prompt never takes a plain transcript
// is the store's TestTranscriptCache… tests, on both databases.)
func TestTranscriptCacheKeepsUsersApart(t *testing.T) {
	t.Parallel()
	s := startStack(t, options{})
	bob := s.createUser("bob", "user")
	audio := clip(t)
	aliceJob, err := s.upload(s.key, "alice-medical-appointment.wav", audio)
	require.NoError(t, err)
	require.Equal(t, "succeeded", s.waitJob(s.key, aliceJob, 2*time.Minute)["status"])

	bobJob, err := s.upload(bob, "lecture.wav", audio)
	require.NoError(t, err)
	j := s.waitJob(bob, bobJob, 2*time.Minute)
	require.Equal(t, "succeeded", j["status"])
	body := fmt.Sprint(j)
	require.NotContains(t, body, aliceJob, "bob's job names alice's")
	require.NotContains(t, body, "alice-medical-appointment", "bob's job shows alice's file name")

	require.Empty(t, j["reused_from"], "a reuse across users names no job")
}
