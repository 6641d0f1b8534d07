package core_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/internal/bombtest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// startCore serves a single-box core (SQLite and blob files in a temp dir)
// on loopback and returns its base URL.
func startCore(t *testing.T, configure func(*core.Config)) string {
	t.Helper()
	cfg := core.Config{DataDir: t.TempDir(), ServiceToken: "svc-token", NodeTokens: []string{"node-token"},
		WorkDir: t.TempDir(), YtDlpBinary: "/nonexistent/yt-dlp", Logger: slog.New(slog.DiscardHandler)}
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := core.New(ctx, cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		c.Close()
	})
	return "http://" + ln.Addr().String()
}

// heapPeak samples the live heap until stop is called, and returns the
// highest reading.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		high := read()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				peak <- max(high, read())
				return
			case <-t.C:
				high = max(high, read())
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

// TestServeBoundsUntrustedRequests sends, all at once, 1 GiB of zeros
// gzipped to about 1 MB to JobService.CreateJob and WorkerService.PushSegments,
// without a token and with a valid one, over the Connect protocol (HTTP/1.1)
// and gRPC (h2c); and the same with 256 MiB gzipped to 260 KB, under the
// wire limit, so the inflating itself is what stops. Every request is
// refused — unauthenticated without a token, resource_exhausted with one —
// and the heap grows by at most 64 MB (unbounded, each would inflate its
// gigabyte).
func TestServeBoundsUntrustedRequests(t *testing.T) {
	base := startCore(t, nil)
	bombs := map[int][]byte{1024: bombtest.Gzip(1024), 256: bombtest.Gzip(256)}
	userID := uuid.NewString()

	type attack struct {
		name, procedure, token, user string
		grpc                         bool
		bomb                         []byte
	}
	var attacks []attack
	for mib, bomb := range bombs {
		for _, p := range []string{ytcaptionv1connect.JobServiceCreateJobProcedure, ytcaptionv1connect.WorkerServicePushSegmentsProcedure} {
			token := "svc-token"
			if strings.Contains(p, "Worker") {
				token = "node-token"
			}
			for _, grpc := range []bool{false, true} {
				attacks = append(attacks,
					attack{fmt.Sprintf("%d MiB to %s anonymous grpc=%v", mib, p, grpc), p, "", "", grpc, bomb},
					attack{fmt.Sprintf("%d MiB to %s with a token grpc=%v", mib, p, grpc), p, token, userID, grpc, bomb})
			}
		}
	}
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()

	runtime.GC()
	before := heapPeak()()
	stop := heapPeak()
	var wg sync.WaitGroup
	results := make([]string, len(attacks))
	for i, a := range attacks {
		bomb := a.bomb
		wg.Go(func() {
			var req *http.Request
			var err error
			if a.grpc {
				frame := make([]byte, 5, 5+len(bomb))
				frame[0] = 1 // compressed
				binary.BigEndian.PutUint32(frame[1:], uint32(len(bomb)))
				req, err = http.NewRequest(http.MethodPost, base+a.procedure, bytes.NewReader(append(frame, bomb...)))
				if err != nil {
					results[i] = err.Error()
					return
				}
				req.Header.Set("Content-Type", "application/grpc")
				req.Header.Set("Grpc-Encoding", "gzip")
			} else {
				req, err = http.NewRequest(http.MethodPost, base+a.procedure, bytes.NewReader(bomb))
				if err != nil {
					results[i] = err.Error()
					return
				}
				req.Header.Set("Content-Type", "application/proto")
				req.Header.Set("Content-Encoding", "gzip")
			}
			if a.token != "" {
				req.Header.Set("Authorization", "Bearer "+a.token)
			}
			if a.user != "" {
				req.Header.Set(svcauth.UserHeader, a.user)
			}
			client := http.DefaultClient
			if a.grpc {
				client = &http.Client{Transport: h2c}
			}
			resp, err := client.Do(req)
			if err != nil {
				results[i] = err.Error()
				return
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if a.grpc {
				results[i] = resp.Trailer.Get("Grpc-Status") + " " + resp.Trailer.Get("Grpc-Message")
			} else {
				results[i] = fmt.Sprintf("%d %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	peak := stop()
	growth := int64(peak) - int64(before)
	t.Logf("%d concurrent requests (%d KB of gzip inflating to 1 GiB, %d KB to 256 MiB): heap %d MB before, peak %d MB, growth %.1f MB",
		len(attacks), len(bombs[1024])>>10, len(bombs[256])>>10, before>>20, peak>>20, float64(growth)/(1<<20))
	for i, a := range attacks {
		// Anonymous requests are refused from their headers, before a byte
		// of body is read; with a token, at the inflated limit.
		grpcStatus, status, code := "8 ", "429 ", "resource_exhausted"
		if a.token == "" {
			grpcStatus, status, code = "16 ", "401 ", "unauthenticated"
		}
		if a.grpc {
			require.True(t, strings.HasPrefix(results[i], grpcStatus), "%s: want gRPC status %s, got %q", a.name, grpcStatus, results[i])
		} else {
			require.True(t, strings.HasPrefix(results[i], status), "%s: got %q", a.name, results[i])
			require.Contains(t, results[i], `"code":"`+code+`"`, a.name)
		}
	}
	require.LessOrEqual(t, growth, int64(64<<20), "heap growth")
}

// TestServeCutsSlowRequestsButNotLongPolls: a client trickling its body is
// cut off after the read timeout, while a long-poll that outlives it — over
// HTTP/1.1 and h2c — gets its answer.
func TestServeCutsSlowRequestsButNotLongPolls(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	base := startCore(t, func(c *core.Config) { c.RequestReadTimeout = timeout })

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: core\r\nContent-Type: application/proto\r\nContent-Length: 1000\r\n\r\n",
		ytcaptionv1connect.WorkerServicePingProcedure)
	require.NoError(t, err)
	start := time.Now()
	cut := make(chan struct{})
	go func() {
		defer close(cut)
		_, _ = io.Copy(io.Discard, bufio.NewReader(conn)) // until the server closes
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
trickle:
	for range 100 {
		select {
		case <-cut:
			break trickle
		case <-tick.C:
			if _, err := conn.Write([]byte{0}); err != nil {
				break trickle
			}
		}
	}
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatal("a trickled body was not cut off")
	}
	took := time.Since(start)
	require.Less(t, took, 5*time.Second, "cut off at the read timeout")
	t.Logf("trickled body cut off after %v (read timeout %v)", took.Round(10*time.Millisecond), timeout)

	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	for name, tr := range map[string]http.RoundTripper{"HTTP/1.1": http.DefaultTransport, "h2c": h2c} {
		node := ytcaptionv1connect.NewWorkerServiceClient(&http.Client{Transport: &svcauth.Transport{Base: tr, Token: "node-token"}}, base)
		ctx, cancel := context.WithTimeout(context.Background(), 3*timeout+time.Second) // a poll of 3 s: beyond the read timeout
		start := time.Now()
		resp, err := node.AcquireJob(ctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "gpu-1", Engines: []string{"sphinx"}}))
		cancel()
		require.NoError(t, err, name)
		require.Nil(t, resp.Msg.GetAssignment(), name)
		require.Greater(t, time.Since(start), 2*timeout, "%s: the poll was held past the read timeout", name)
	}
}
