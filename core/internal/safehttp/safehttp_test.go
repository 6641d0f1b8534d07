package safehttp

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
)

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestLoopbackIsRefusedUnlessAllowed(t *testing.T) {
	t.Parallel()
	u := serve(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("audio")) })
	_, err := Download(context.Background(), NewClient(Config{}), u+"/a.ogg", t.TempDir(), 1<<20)
	require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%v", err)
	require.ErrorIs(t, err, egress.ErrAddressNotAllowed)

	f, err := Download(context.Background(), NewClient(Config{Policy: egress.Policy{AllowPrivate: true}}), u+"/a.ogg", t.TempDir(), 1<<20)
	require.NoError(t, err)
	b, err := os.ReadFile(f.Path)
	require.NoError(t, err)
	require.Equal(t, "audio", string(b))
	require.Equal(t, "a.ogg", f.Filename)
}

// TestRedirectToRefusedAddressIsRefused: the first hop is allowed by a dialer
// that admits only that server's port, the redirect target (another loopback
// port standing in for an internal service) is not. Every hop dials anew, so
// the dial-time check covers redirects.
func TestRedirectToRefusedAddressIsRefused(t *testing.T) {
	t.Parallel()
	hit := false
	internal := serve(t, func(w http.ResponseWriter, r *http.Request) { hit = true })
	public := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal+"/secret", http.StatusFound)
	})
	c := NewClient(Config{Policy: egress.Policy{AllowPrivate: true}})
	publicAddr := netip.MustParseAddrPort(public[len("http://"):])
	base := c.Transport.(*http.Transport).DialContext
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != publicAddr.String() {
			return nil, egress.ErrAddressNotAllowed
		}
		return base(ctx, network, addr)
	}
	_, err := Download(context.Background(), c, public+"/a.ogg", t.TempDir(), 1<<20)
	require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%v", err)
	require.False(t, hit)
}

// TestZonesAndRefusedRedirectsAreForbidden: the case — a zone id in
// the URL — and a redirect to a literal refused address are source_forbidden
// under the production policy, and the loopback server sees nothing.
func TestZonesAndRefusedRedirectsAreForbidden(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	u := serve(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1); _, _ = w.Write([]byte("secret")) })
	port := u[strings.LastIndex(u, ":")+1:]
	for _, raw := range []string{
		"http://[::1%25lo]:" + port + "/a.wav",
		"http://127.0.0.1%25lo:" + port + "/a.wav",
		"http://[::ffff:127.0.0.1]:" + port + "/a.wav",
		"http://0.0.0.0:" + port + "/a.wav",
	} {
		_, err := Download(context.Background(), NewClient(Config{}), raw, t.TempDir(), 1<<20)
		require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%s: %v", raw, err)
	}
	// Even the dev stack never follows a zone.
	_, err := Download(context.Background(), NewClient(Config{Policy: egress.Policy{AllowPrivate: true}}), "http://[::1%25lo]:"+port+"/a.wav", t.TempDir(), 1<<20)
	require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%v", err)
	require.Zero(t, hits.Load())

	redirect := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	_, err = Download(context.Background(), NewClient(Config{Policy: egress.Policy{AllowPrivate: true}}), redirect+"/a.wav", t.TempDir(), 1<<20)
	require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%v", err)
}

func TestStatusAndSizeClassification(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte{1}, 2048)
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			http.NotFound(w, r)
		case "/410":
			w.WriteHeader(http.StatusGone)
		case "/403":
			w.WriteHeader(http.StatusForbidden)
		case "/400":
			w.WriteHeader(http.StatusBadRequest)
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/empty":
		case "/big":
			_, _ = w.Write(big) // Content-Length known up front
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length: counted while copying
			_, _ = w.Write(big)
		case "/redirect-loop":
			http.Redirect(w, r, "/redirect-loop", http.StatusFound)
		case "/redirect-ftp":
			http.Redirect(w, r, "ftp://example.com/a", http.StatusFound)
		}
	})
	c := NewClient(Config{Policy: egress.Policy{AllowPrivate: true}})
	for _, tc := range []struct {
		path, code string
		retryable  bool
	}{
		{"/404", job.CodeSourceNotFound, false},
		{"/410", job.CodeSourceNotFound, false},
		{"/403", job.CodeSourceForbidden, false},
		{"/400", job.CodeDownloadFailed, false},
		{"/503", job.CodeDownloadFailed, true},
		{"/empty", job.CodeEmptyMedia, false},
		{"/big", job.CodeMediaTooLarge, false},
		{"/chunked", job.CodeMediaTooLarge, false},
		{"/redirect-loop", job.CodeDownloadFailed, false},
		{"/redirect-ftp", job.CodeDownloadFailed, false},
	} {
		_, err := Download(context.Background(), c, u+tc.path, t.TempDir(), 1024)
		var je *job.Error
		require.ErrorAs(t, err, &je, tc.path)
		require.Equal(t, tc.code, je.Code, "%s: %v", tc.path, err)
		require.Equal(t, tc.retryable, je.Retryable, tc.path)
	}
}

func TestCancelStopsADownload(t *testing.T) {
	t.Parallel()
	u := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Download(ctx, NewClient(Config{Policy: egress.Policy{AllowPrivate: true}}), u, t.TempDir(), 1024)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
