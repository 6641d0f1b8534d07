package fetch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/egress"
)

// pageSource serves the media files and, at /talk, a web page whose HTML5
// <video> plays good.ogg: what yt-dlp's generic extractor reads.
func pageSource(t *testing.T, m mediaFiles) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir(m.dir))))
	mux.HandleFunc("/talk", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>A talk</title><video controls src="http://%s/files/good.ogg"></video>`, r.Host)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAWebPageIsReadWithYtDlpOnlyWhereTheOperatorAllows: a URL on no known
// site that answers with a web page fails not_media — unless the generic
// extractor is enabled, when the real yt-dlp finds the page's media and the
// job is ready like any other.
func TestAWebPageIsReadWithYtDlpOnlyWhereTheOperatorAllows(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		src := pageSource(t, m)
		local := egress.Policy{AllowPrivate: true}

		h := newHarness(t, open, Config{})
		h.stage.ytdlp = ytdlp.New(ytdlp.Config{Policy: local})
		j := h.fetchOne(t, src+"/talk", 1)
		require.Equal(t, job.StatusFailed, j.Status)
		require.Equal(t, job.CodeNotMedia, j.ErrorCode, j.ErrorMessage)
		require.Contains(t, j.ErrorMessage, "web page")

		h = newHarness(t, open, Config{})
		h.stage.ytdlp = ytdlp.New(ytdlp.Config{Policy: local, Generic: true})
		j = h.fetchOne(t, src+"/talk", 1)
		require.Equal(t, job.StatusReady, j.Status, "%s: %s", j.ErrorCode, j.ErrorMessage)
		require.InDelta(t, 3.0, j.MediaDuration.Seconds(), 0.1)
		h.requireClean(t)
	})
}

// TestASitePageGoesToYtDlp: a site job (here a page served locally, read by
// the generic extractor, as a stand-in for Vimeo and the rest) is fetched
// with yt-dlp, never as a direct file.
func TestASitePageGoesToYtDlp(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		src := pageSource(t, m)
		h := newHarness(t, open, Config{})
		h.stage.ytdlp = ytdlp.New(ytdlp.Config{Policy: egress.Policy{AllowPrivate: true}, Extractors: "generic,html5"})
		j := h.create(t, job.SourceSite, src+"/talk", 1)
		h.stage.process(context.Background(), h.claim(t, j.ID))
		j = h.get(t, j.ID)
		require.Equal(t, job.StatusReady, j.Status, "%s: %s", j.ErrorCode, j.ErrorMessage)
	})
}

// TestAPagePointingAtAForbiddenAddressFailsTheJob: a site page at an address
// the operator allows (--allow-media-from) whose media is on loopback, under
// production's policy otherwise: the job fails source_forbidden at once
// (another attempt would be refused the same), and the loopback server sees
// no request.
func TestAPagePointingAtAForbiddenAddressFailsTheJob(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		var hits atomic.Int64
		secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			http.ServeFile(w, r, m.path("good.ogg"))
		}))
		t.Cleanup(secret.Close)
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		require.NoError(t, err)
		pg := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><title>A talk</title><video src="%s/good.ogg"></video>`, secret.URL)
		}))
		pg.Listener = ln
		pg.Start()
		t.Cleanup(pg.Close)

		h := newHarness(t, open, Config{})
		policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
		h.stage.ytdlp = ytdlp.New(ytdlp.Config{Policy: policy, Extractors: "generic,html5"})
		j := h.create(t, job.SourceSite, pg.URL+"/talk", 3)
		h.stage.process(context.Background(), h.claim(t, j.ID))
		j = h.get(t, j.ID)
		require.Equal(t, job.StatusFailed, j.Status)
		require.Equal(t, job.CodeSourceForbidden, j.ErrorCode, j.ErrorMessage)
		require.Len(t, h.attempts(t, j.ID), 1, "refused once, not retried")
		require.Zero(t, hits.Load(), "the loopback server saw a request")
		h.requireClean(t)
	})
}
