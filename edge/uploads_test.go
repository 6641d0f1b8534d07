package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// tusCore stands in for core's tus endpoint: it records what the edge
// relayed and reports each body's bytes as they arrive.
type tusCore struct {
	got      chan http.Header
	received atomic.Int64  // bytes of the current PATCH so far
	progress chan struct{} // a wake-up when received grows
	calls    atomic.Int64
}

func (c *tusCore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.calls.Add(1)
	h := r.Header.Clone()
	h.Set("X-Method", r.Method)
	h.Set("X-Path", r.URL.Path)
	c.got <- h
	switch r.Method {
	case http.MethodPost:
		w.Header().Set("Location", "http://core.internal:8020/v1/uploads/abc")
		w.Header().Set("Tus-Resumable", "1.0.0")
		w.WriteHeader(http.StatusCreated)
	case http.MethodPatch:
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := r.Body.Read(buf)
			n += int64(k)
			if k > 0 {
				c.received.Store(n)
				select {
				case c.progress <- struct{}{}:
				default:
				}
			}
			if err != nil {
				break
			}
		}
		w.Header().Set("Upload-Offset", fmt.Sprint(n))
		w.WriteHeader(http.StatusNoContent)
	case http.MethodHead:
		w.Header().Set("Upload-Offset", "7")
		w.Header().Set("Upload-Length", "10")
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func startTusEdge(t *testing.T) (string, *tusCore) {
	t.Helper()
	return startTusEdgeWith(t, nil)
}

// startTusEdgeWith is startTusEdge with configure applied to the edge's
// Config.
func startTusEdgeWith(t *testing.T, configure func(*Config)) (string, *tusCore) {
	t.Helper()
	f := newFakeCore()
	tc := &tusCore{got: make(chan http.Header, 16), progress: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(f))
	mux.Handle(ytcaptionv1connect.NewAuthServiceHandler(f))
	mux.Handle("/v1/uploads", tc)
	mux.Handle("/v1/uploads/", tc)
	core := httptest.NewServer(mux)
	t.Cleanup(core.Close)
	cfg := Config{CoreURL: core.URL, ServiceToken: token, MaxBodyBytes: 1024}
	if configure != nil {
		configure(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String(), tc
}

// TestUploadsAreRelayedAsTheyArrive: the edge relays tus requests to core
// for the key's user with the service token, rewrites core's Location to
// its own, refuses a request without a key before core hears of it, and
// streams a PATCH body — core has the first half while the client still
// holds the second, which a buffering edge would never allow.
func TestUploadsAreRelayedAsTheyArrive(t *testing.T) {
	t.Parallel()
	base, tc := startTusEdge(t)

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/uploads", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", "2097152")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Zero(t, tc.calls.Load(), "core never hears of a request without a key")

	req.Header.Set("Authorization", "Bearer key-alice")
	req.Header.Set("Upload-Metadata", "filename bGVjdHVyZS53YXY=")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, base+"/v1/uploads/abc", resp.Header.Get("Location"), "clients see the edge's URL")
	h := <-tc.got
	require.Equal(t, "Bearer "+token, h.Get("Authorization"), "core sees the service token, never the key")
	require.Equal(t, "11111111-1111-1111-1111-111111111111", h.Get(svcauth.UserHeader))
	require.Equal(t, "2097152", h.Get("Upload-Length"))
	require.Equal(t, "filename bGVjdHVyZS53YXY=", h.Get("Upload-Metadata"))

	// A PATCH whose second half is sent only once core has the first.
	const half = 1 << 20
	pr, pw := io.Pipe()
	cr := &countingReader{r: pr}
	req, _ = http.NewRequest(http.MethodPatch, base+"/v1/uploads/abc", cr)
	req.ContentLength = 2 * half
	req.Header.Set("Authorization", "Bearer key-alice")
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- nil
			return
		}
		resp.Body.Close()
		answered <- resp
	}()
	_, err = pw.Write(make([]byte, half))
	require.NoError(t, err)
	deadline := time.After(20 * time.Second) // a failure, not a timing: a buffering edge never relays early
	for tc.received.Load() < half/2 {
		select {
		case <-tc.progress:
		case <-deadline:
			t.Fatalf("core saw %d bytes of the PATCH (the client sent %d) while the client held the rest: the edge is buffering", tc.received.Load(), cr.n.Load())
		}
	}
	t.Logf("core had %d bytes while the client held the other %d", tc.received.Load(), half)
	_, err = pw.Write(make([]byte, half))
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	resp = <-answered
	require.NotNil(t, resp)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, fmt.Sprint(2*half), resp.Header.Get("Upload-Offset"))
	h = <-tc.got
	require.Equal(t, "PATCH", h.Get("X-Method"))
	require.Equal(t, "/v1/uploads/abc", h.Get("X-Path"))
	require.Equal(t, "0", h.Get("Upload-Offset"))

	req, _ = http.NewRequest(http.MethodHead, base+"/v1/uploads/abc", nil)
	req.Header.Set("Authorization", "Bearer key-alice")
	req.Header.Set("Tus-Resumable", "1.0.0")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "7", resp.Header.Get("Upload-Offset"))
	require.Equal(t, "10", resp.Header.Get("Upload-Length"))
}

// TestChunkedBodiesAreStillBounded: streaming request bodies (for uploads)
// must not let a chunked body past another route's limit.
func TestChunkedBodiesAreStillBounded(t *testing.T) {
	t.Parallel()
	base, _ := startTusEdge(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/jobs HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer key-alice\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	require.NoError(t, err)
	chunk := strings.Repeat("x", 4096)
	for range 4 { // 16 KiB against a 1 KiB limit; the edge may stop reading early
		if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
			break
		}
	}
	_, _ = io.WriteString(conn, "0\r\n\r\n")
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
	require.Equal(t, "request_too_large", errCode(t, b))
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
