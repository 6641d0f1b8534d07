package ytdlp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
)

// serveOn starts h on addr (127.0.0.2 is loopback too on Linux, and a
// different address to the policy) and counts its requests.
func serveOn(t *testing.T, addr string, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	require.NoError(t, err)
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// page is a web page holding one HTML5 <video>, what yt-dlp's generic
// extractor reads.
func page(media string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>A talk</title></head><body>
<video controls><source src="%s" type="audio/wav"></video></body></html>`, media)
	})
}

// TestRealYtDlpCannotBeLedToAForbiddenAddressByAPage is the attack the
// egress proxy stops: a page at an allowed address whose media URL points at
// loopback. yt-dlp follows pages wherever they say; the proxy refuses the
// connection, the job fails source_forbidden, and the loopback server never
// sees a request.
func TestRealYtDlpCannotBeLedToAForbiddenAddressByAPage(t *testing.T) {
	t.Parallel()
	secret, hits := serveOn(t, "127.0.0.1", http.FileServer(http.Dir(filepath.Dir(clip))))
	pg, _ := serveOn(t, "127.0.0.2", page(secret.URL+"/"+filepath.Base(clip)))
	// Production's policy, but for the page's one address.
	policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	d := New(Config{Extractors: "generic,html5", Policy: policy})

	_, err := d.Download(context.Background(), t.TempDir(), pg.URL+"/talk")
	require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%v", err)
	require.ErrorIs(t, err, egress.ErrAddressNotAllowed)
	require.Zero(t, hits.Load(), "the loopback server saw a request")

	// The same page with its media beside it downloads: the proxy is in
	// the way of nothing else.
	media, mediaHits := serveOn(t, "127.0.0.2", http.FileServer(http.Dir(filepath.Dir(clip))))
	ok, _ := serveOn(t, "127.0.0.2", page(media.URL+"/"+filepath.Base(clip)))
	r, err := d.Download(context.Background(), t.TempDir(), ok.URL+"/talk")
	require.NoError(t, err)
	st, err := os.Stat(r.Path)
	require.NoError(t, err)
	want, _ := os.Stat(clip)
	require.Equal(t, want.Size(), st.Size())
	require.Positive(t, mediaHits.Load())
}

// TestYtDlpTrafficGoesThroughTheOutboundProxy: with an outbound proxy set,
// yt-dlp's requests reach it — behind the egress proxy, never around it.
func TestYtDlpTrafficGoesThroughTheOutboundProxy(t *testing.T) {
	t.Parallel()
	media, _ := serveOn(t, "127.0.0.2", http.FileServer(http.Dir(filepath.Dir(clip))))
	pg, _ := serveOn(t, "127.0.0.2", page(media.URL+"/"+filepath.Base(clip)))
	var seen atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A plain-HTTP forward proxy: absolute-form requests.
		seen.Add(1)
		require.True(t, r.URL.IsAbs(), r.URL.String())
		out, err := http.DefaultTransport.RoundTrip(r.Clone(context.Background()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer out.Body.Close()
		for k, v := range out.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(out.StatusCode)
		_, _ = io.Copy(w, out.Body)
	}))
	defer upstream.Close()
	d := New(Config{Extractors: "generic,html5", Policy: egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}}).
		Via(Route{Proxy: upstream.URL})
	_, err := d.Download(context.Background(), t.TempDir(), pg.URL+"/talk")
	require.NoError(t, err)
	require.GreaterOrEqual(t, seen.Load(), int64(2), "the page and the media through the outbound proxy")
}
