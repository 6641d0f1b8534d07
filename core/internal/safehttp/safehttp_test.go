package safehttp

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"172.32.0.1", true},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false}, // multicast
		{"::1", false},
		{"::", false},
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:169.254.169.254", false},
		{"fd00::1", false},
		{"fe80::1", false},
		{"ff02::1", false},
	} {
		err := CheckAddr(netip.MustParseAddr(tc.addr), false)
		require.Equal(t, tc.allowed, err == nil, tc.addr)
	}
	require.NoError(t, CheckAddr(netip.MustParseAddr("127.0.0.1"), true), "dev stack")
	require.Error(t, CheckAddr(netip.MustParseAddr("0.0.0.0"), true), "unspecified never")
}

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
	require.ErrorIs(t, err, ErrAddressNotAllowed)

	f, err := Download(context.Background(), NewClient(Config{AllowPrivate: true}), u+"/a.ogg", t.TempDir(), 1<<20)
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
	c := NewClient(Config{AllowPrivate: true})
	publicAddr := netip.MustParseAddrPort(public[len("http://"):])
	base := c.Transport.(*http.Transport).DialContext
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != publicAddr.String() {
			return nil, ErrAddressNotAllowed
		}
		return base(ctx, network, addr)
	}
	_, err := Download(context.Background(), c, public+"/a.ogg", t.TempDir(), 1<<20)
	require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%v", err)
	require.False(t, hit)
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
	c := NewClient(Config{AllowPrivate: true})
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
	_, err := Download(ctx, NewClient(Config{AllowPrivate: true}), u, t.TempDir(), 1024)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
