package metricsrv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/bombtest"
)

// countingListener counts the bytes its connections read.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, read: &l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// serveMetrics serves a registry's metrics at /metrics on a loopback port,
// as every binary does, until the test ends.
func serveMetrics(t *testing.T) (*http.Server, *countingListener) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: ln}
	srv := Server(map[string]http.Handler{"/metrics": Handler(reg)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, srv, cl) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, "shut down when the context ended")
	})
	return srv, cl
}

func TestMetricsListenerServesOnlyGETMetrics(t *testing.T) {
	t.Parallel()
	srv, ln := serveMetrics(t)
	require.Positive(t, srv.ReadHeaderTimeout)
	require.Positive(t, srv.ReadTimeout)
	require.Positive(t, srv.WriteTimeout)
	require.Positive(t, srv.IdleTimeout)
	require.Positive(t, srv.MaxHeaderBytes)
	require.LessOrEqual(t, srv.MaxHeaderBytes, 64<<10)

	base := "http://" + ln.Addr().String()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodHead, "/metrics", http.StatusOK},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodPut, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/metrics/", http.StatusNotFound},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader("x=1"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, "%s %s", tc.method, tc.path)
		if tc.status == http.StatusOK && tc.method == http.MethodGet {
			require.Contains(t, string(b), "go_goroutines")
		}
	}

	// Headers past the limit are refused before any handler runs.
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("X-Pad", strings.Repeat("a", 2*srv.MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// TestMetricsListenerNeverReadsABody sends a metrics listener a
// body that inflates to 1 GiB (gzip, about 1.3 MB on the wire), as POST and
// as GET, and measures what the process read and how much it grew: the
// listener answers from the headers and reads none of it. Not parallel, so
// that the resident-memory figure is this test's alone.
func TestMetricsListenerNeverReadsABody(t *testing.T) {
	body := bytes.NewBuffer(bombtest.Gzip(1 << 10))

	_, ln := serveMetrics(t)
	before, _ := bombtest.Memory(t, 0)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		readBefore := ln.read.Load()
		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
		go func() {
			fmt.Fprintf(conn, "%s /metrics HTTP/1.1\r\nHost: metrics\r\nContent-Type: application/octet-stream\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", method, body.Len())
			_, _ = conn.Write(body.Bytes()) // fails once the listener hangs up: it wants none of it
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, method)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conn.Close()
		want := http.StatusMethodNotAllowed
		if method == http.MethodGet {
			want = http.StatusOK
		}
		require.Equal(t, want, resp.StatusCode, method)
		require.True(t, resp.Close, "%s: the listener hangs up rather than read the body", method)
		read := ln.read.Load() - readBefore
		t.Logf("%s: %d-byte body inflating to 1 GiB: the listener read %d bytes", method, body.Len(), read)
		require.Less(t, read, int64(64<<10), "%s: the listener read the body", method)
	}
	after, _ := bombtest.Memory(t, 0)
	grew := after - before
	t.Logf("resident memory grew %d KiB", grew>>10)
	require.Less(t, grew, int64(64<<20))
}

// TestStartServesUntilStopped: Start's listener answers at once, and stop
// closes it cleanly; a port already taken is an error, not a silent no-op.
func TestStartServesUntilStopped(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	addr, stop, err := Start(context.Background(), "127.0.0.1:0", map[string]http.Handler{"/metrics": Handler(reg)})
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, _, err = Start(context.Background(), addr, nil)
	require.Error(t, err, "the port is taken")

	require.NoError(t, stop())
	_, err = http.Get("http://" + addr + "/metrics")
	require.Error(t, err, "closed after stop")
}
