package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/bombtest"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/redistest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

var (
	// gigabyteBomb inflates to 1 GiB: about 1 MB on the wire.
	gigabyteBomb = sync.OnceValue(func() []byte { return bombtest.Gzip(1 << 10) })
	// smallBomb fits under the 64 KiB body limit on the wire and inflates
	// to 60 MiB: only a refusal to inflate stops it.
	smallBomb = sync.OnceValue(func() []byte { return bombtest.Gzip(60) })
)

// h2c is a client speaking HTTP/2 without TLS, as gRPC clients do here.
func h2c() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// memoryGrowth runs f and returns how far this process's peak resident set
// rose above what was resident before it (VmHWM, reset through clear_refs),
// and the most the Go heap's objects grew over their size before (sampled
// every millisecond).
func memoryGrowth(t *testing.T, f func()) (rss, heap int64) {
	t.Helper()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	heapBefore := int64(sample[0].Value.Uint64())
	rssBefore, _ := bombtest.Memory(t, 0)
	peakReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var peakHeap, peakRSS atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := int64(s[0].Value.Uint64()); v > peakHeap.Load() {
				peakHeap.Store(v)
			}
			if !peakReset {
				if v, _ := bombtest.Memory(t, 0); v > peakRSS.Load() {
					peakRSS.Store(v)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	<-stopped
	peak := peakRSS.Load()
	if peakReset {
		_, peak = bombtest.Memory(t, 0)
	}
	return max(peak-rssBefore, 0), max(peakHeap.Load()-heapBefore, 0)
}

// answer is what a door said: an HTTP status and error code, a gRPC status,
// or "closed" when it hung up while the body was still being sent.
type answer struct {
	status int
	code   string // REST or Connect error code
	grpc   string // grpc-status
	closed bool
}

func (a answer) String() string {
	switch {
	case a.closed:
		return "closed"
	case a.grpc != "":
		return "grpc:" + a.grpc
	}
	return fmt.Sprintf("%d %s", a.status, a.code)
}

// throw sends body to url with header and says what came back.
func throw(t *testing.T, client *http.Client, url string, header http.Header, body []byte) answer {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		return answer{closed: true}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := answer{status: resp.StatusCode, grpc: resp.Header.Get("Grpc-Status")}
	if a.grpc == "" {
		a.grpc = resp.Trailer.Get("Grpc-Status")
	}
	var e struct {
		Code  string
		Error struct{ Code string }
	}
	if json.Unmarshal(b, &e) == nil {
		a.code = e.Code + e.Error.Code // Connect's {"code"} or REST's {"error":{"code"}}
	}
	return a
}

// TestInflatedBodiesAreRefusedWithinBoundedMemory throws request bodies that
// inflate to 1 GiB (and, under the REST body limit, to 60 MiB) at every door
// of the edge — REST, Connect and gRPC, with no key, a made-up key and a
// valid one — four at once, as the attack did. Every answer must be a clean
// refusal, and at no door may four bombs grow the process's peak resident
// memory or Go heap by more than 64 MB (measured per door, after a GC, so
// that one door's garbage is not billed to the next).
func TestInflatedBodiesAreRefusedWithinBoundedMemory(t *testing.T) {
	// Not parallel: the process's memory is the measurement.
	h := startConfigured(t, func(c *Config) { c.MaxBodyBytes = 0 }) // the production default, 64 KiB
	big, small := gigabyteBomb(), smallBomb()
	t.Logf("bombs: %d bytes → 1 GiB, %d bytes → 60 MiB", len(big), len(small))
	grpcFrame := func(b []byte) []byte {
		f := make([]byte, 5, 5+len(b))
		f[0] = 1 // compressed
		binary.BigEndian.PutUint32(f[1:], uint32(len(b)))
		return append(f, b...)
	}
	grpcBig := grpcFrame(big)
	var multi bytes.Buffer
	mw := multipart.NewWriter(&multi)
	fw, _ := mw.CreateFormFile("file", "zeros.wav")
	_, _ = fw.Write(small)
	_ = mw.Close()

	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	const noKey, madeUp, valid = "", "made-up-key", "key-alice"
	withKey := func(h http.Header, key string) http.Header {
		h = h.Clone()
		if key != "" {
			h.Set("Authorization", "Bearer "+key)
		}
		return h
	}
	jsonGzip := hdr("Content-Type", "application/json", "Content-Encoding", "gzip")
	connectGzip := hdr("Content-Type", "application/proto", "Content-Encoding", "gzip", "Connect-Protocol-Version", "1")
	grpcGzip := hdr("Content-Type", "application/grpc", "Grpc-Encoding", "gzip", "Te", "trailers")
	createJob := h.front + ytcaptionv1connect.JobServiceCreateJobProcedure
	uploadJob := h.front + ytcaptionv1connect.JobServiceUploadJobProcedure
	h1, h2 := &http.Client{Timeout: time.Minute}, h2c()

	type door struct {
		name   string
		client *http.Client
		url    string
		header http.Header
		body   []byte
		want   string // the answer; "closed" is accepted too when the door hangs up mid-body
	}
	doors := []door{
		{"REST POST /v1/jobs, 1 GiB, no key", h1, h.base + "/v1/jobs", withKey(jsonGzip, noKey), big, "413 request_too_large"},
		{"REST POST /v1/jobs, 1 GiB, valid key", h1, h.base + "/v1/jobs", withKey(jsonGzip, valid), big, "413 request_too_large"},
		{"REST POST /v1/jobs, 60 MiB, no key", h1, h.base + "/v1/jobs", withKey(jsonGzip, noKey), small, "415 unsupported_encoding"},
		{"REST POST /v1/jobs, 60 MiB, made-up key", h1, h.base + "/v1/jobs", withKey(jsonGzip, madeUp), small, "415 unsupported_encoding"},
		{"REST POST /v1/jobs, 60 MiB, valid key", h1, h.base + "/v1/jobs", withKey(jsonGzip, valid), small, "415 unsupported_encoding"},
		{"REST POST /v1/jobs, 60 MiB br, valid key", h1, h.base + "/v1/jobs",
			withKey(hdr("Content-Type", "application/json", "Content-Encoding", "br"), valid), small, "415 unsupported_encoding"},
		{"REST POST /v1/audio/transcriptions, 60 MiB, valid key", h1, h.base + "/v1/audio/transcriptions",
			withKey(hdr("Content-Type", mw.FormDataContentType(), "Content-Encoding", "gzip"), valid), multi.Bytes(), "415 unsupported_encoding"},
		{"Connect CreateJob, 1 GiB, no key", h1, createJob, withKey(connectGzip, noKey), big, "401 unauthenticated"},
		{"Connect CreateJob, 1 GiB, valid key", h1, createJob, withKey(connectGzip, valid), big, "429 resource_exhausted"},
		{"Connect CreateJob, 60 MiB, valid key", h1, createJob, withKey(connectGzip, valid), small, "429 resource_exhausted"},
		{"Connect UploadJob, 1 GiB, no key", h1, uploadJob, withKey(connectGzip, noKey), big, "401 unauthenticated"},
		{"Connect UploadJob, 1 GiB, valid key", h1, uploadJob, withKey(connectGzip, valid), big, "429 resource_exhausted"},
		{"gRPC CreateJob, 1 GiB, no key", h2, createJob, withKey(grpcGzip, noKey), grpcBig, "grpc:16"},
		{"gRPC CreateJob, 1 GiB, valid key", h2, createJob, withKey(grpcGzip, valid), grpcBig, "grpc:8"},
		{"gRPC UploadJob, 1 GiB, no key", h2, uploadJob, withKey(grpcGzip, noKey), grpcBig, "grpc:16"},
		{"gRPC UploadJob, 1 GiB, valid key", h2, uploadJob, withKey(grpcGzip, valid), grpcBig, "grpc:8"},
	}
	var report strings.Builder
	var worstRSS, worstHeap int64
	for _, d := range doors {
		start := time.Now()
		answers := make([]answer, 4)
		rss, heap := memoryGrowth(t, func() {
			var wg sync.WaitGroup
			for i := range answers {
				wg.Go(func() { answers[i] = throw(t, d.client, d.url, d.header, d.body) })
			}
			wg.Wait()
		})
		closed := 0
		for _, a := range answers {
			require.True(t, a.String() == d.want || a.closed, "%s: answered %s, want %s", d.name, a, d.want)
			if a.closed {
				closed++
			}
		}
		fmt.Fprintf(&report, "%-55s %-24s %d/4 hung up mid-body  %6s  RSS +%5.1f MB  heap +%5.1f MB\n", d.name, d.want, closed,
			time.Since(start).Round(time.Millisecond), float64(rss)/(1<<20), float64(heap)/(1<<20))
		worstRSS, worstHeap = max(worstRSS, rss), max(worstHeap, heap)
	}
	t.Logf("\n%s\nthe worst door: peak resident memory grew by %.1f MB, the Go heap by %.1f MB", report.String(),
		float64(worstRSS)/(1<<20), float64(worstHeap)/(1<<20))
	require.LessOrEqual(t, worstRSS, int64(64<<20), "peak RSS growth")
	require.LessOrEqual(t, worstHeap, int64(64<<20), "peak heap growth")
	h.core.mu.Lock()
	require.Empty(t, h.core.jobs, "nothing reached core")
	h.core.mu.Unlock()
	resp, _ := h.do("GET", "/v1/jobs", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "the edge still serves")
}

// TestBodiesAreBoundedBeforeTheyAreRead: a declared body over a route's
// limit is refused as soon as the header arrives — 64 KiB for JSON, the
// upload limit for /v1/audio/transcriptions — so nothing is read or held.
func TestBodiesAreBoundedBeforeTheyAreRead(t *testing.T) {
	t.Parallel()
	h := startConfigured(t, func(c *Config) { c.MaxBodyBytes = 0 })
	for _, tc := range []struct {
		path   string
		length int
		want   int
	}{
		{"/v1/jobs", 64<<10 + 1, http.StatusRequestEntityTooLarge},
		{"/v1/admin/users", 1 << 20, http.StatusRequestEntityTooLarge},
		{"/V1/Audio/Transcriptions/", 100 << 20, http.StatusRequestEntityTooLarge},
		{"/v1/audio/transcriptions", 1 << 30, http.StatusRequestEntityTooLarge},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
		require.NoError(t, err)
		_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer key-alice\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", tc.path, tc.length)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, "answered without the body being sent: %s", tc.path)
		b, _ := io.ReadAll(resp.Body)
		conn.Close()
		require.Equal(t, tc.want, resp.StatusCode, "%s: %s", tc.path, b)
		require.Equal(t, "request_too_large", errCode(t, b))
	}
	// An upload under its limit is read (it is refused for its missing form, not its size).
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("notfile", "a.wav")
	_, _ = fw.Write(make([]byte, 200<<10))
	_ = mw.Close()
	resp, b := h.doWith("POST", "/v1/audio/transcriptions", "key-alice", body.String(), map[string]string{"Content-Type": mw.FormDataContentType()})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
}

// TestHeadersAreBounded: a header past the listener's bound is refused (431)
// by both doors, and a header sent too slowly is cut off.
func TestHeadersAreBounded(t *testing.T) {
	t.Parallel()
	h := startTuned(t, nil, func(e *Edge) {
		e.front.ReadHeaderTimeout = 300 * time.Millisecond
		e.app.Server().ReadTimeout = 300 * time.Millisecond
	})
	huge := strings.Repeat("a", 20<<10)
	resp, b := h.doWith("GET", "/v1/jobs", "key-alice", "", map[string]string{"X-Padding": huge})
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, string(b))
	require.Equal(t, "request_too_large", errCode(t, b))
	req, _ := http.NewRequest(http.MethodPost, h.front+ytcaptionv1connect.JobServiceGetJobProcedure, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Padding", huge)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)

	for _, base := range []string{h.base, h.front} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		require.NoError(t, err)
		_, err = io.WriteString(conn, "GET /v1/jobs HTTP/1.1\r\nHost: edge\r\n") // and nothing more
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = io.ReadAll(conn) // the server answers 408 or hangs up
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "%s kept a slow header's connection open", base)
		conn.Close()
	}
}

// TestMadeUpKeyFloodIsLimitedPerAddress sends 1,500 invented keys from one
// address, 16 at a time, to REST, then 300 to the Connect door of another
// edge: after the allowance of refused keys every further one is 429 (or
// resource_exhausted) with Retry-After, core is asked at most the allowance
// (and a little refill), and the address's cached valid key still works.
func TestMadeUpKeyFloodIsLimitedPerAddress(t *testing.T) {
	t.Parallel()
	const allowance = 20
	h := startConfigured(t, func(c *Config) { c.FailedAuthBurst, c.FailedAuthPerMinute = allowance, allowance })
	resp, _ := h.do("GET", "/v1/jobs", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	before := h.core.authCalls.Load()

	var unauthorized, limited, other atomic.Int64
	keys := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for k := range keys {
				req, _ := http.NewRequest(http.MethodGet, h.base+"/v1/jobs", nil)
				req.Header.Set("Authorization", "Bearer "+k)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusUnauthorized:
					unauthorized.Add(1)
				case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "" && strings.Contains(string(b), `"rate_limited"`):
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
	calls := h.core.authCalls.Load() - before
	t.Logf("REST: 1500 made-up keys from one address: %d unauthorized, %d limited, %d other; core's Authenticate called %d times",
		unauthorized.Load(), limited.Load(), other.Load(), calls)
	require.Zero(t, other.Load())
	require.LessOrEqual(t, calls, int64(allowance+2), "core is asked at most the allowance and its refill")
	require.Equal(t, calls, unauthorized.Load(), "every refusal cost one lookup, no more")
	require.GreaterOrEqual(t, limited.Load(), int64(1500-allowance-2))
	resp, b := h.do("GET", "/v1/jobs", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "the valid cached key, from the same address, during the flood: %s", b)
	resp, b = h.do("GET", "/v1/jobs", "ytc_"+rand.Text(), "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "rate_limited", errCode(t, b))
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Positive(t, retry)

	// The Connect door, on an edge of its own.
	c := startConfigured(t, func(c *Config) { c.FailedAuthBurst, c.FailedAuthPerMinute = allowance, allowance })
	client := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, c.front)
	var unauth, exhausted int
	for range 300 {
		req := connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: "x"})
		req.Header().Set("Authorization", "Bearer ytc_"+rand.Text())
		_, err := client.GetJob(context.Background(), req)
		var ce *connect.Error
		require.ErrorAs(t, err, &ce)
		switch ce.Code() {
		case connect.CodeUnauthenticated:
			unauth++
		case connect.CodeResourceExhausted:
			require.Equal(t, "rate_limited", errcode.OfConnect(ce))
			require.NotEmpty(t, ce.Meta().Get("Retry-After"))
			exhausted++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	t.Logf("Connect: 300 made-up keys: %d unauthenticated, %d resource_exhausted; core asked %d times", unauth, exhausted, c.core.authCalls.Load())
	require.LessOrEqual(t, c.core.authCalls.Load(), int64(allowance+2))
	require.GreaterOrEqual(t, exhausted, 300-allowance-2)
}

// TestForwardedForIsTrustedOnlyFromConfiguredProxies: from an untrusted
// peer a spoofed X-Forwarded-For changes nothing — every guess counts
// against the peer; behind a trusted proxy each client has its own
// allowance, taken from the right-most untrusted hop, whatever the client
// wrote to its left.
func TestForwardedForIsTrustedOnlyFromConfiguredProxies(t *testing.T) {
	t.Parallel()
	const allowance = 5
	guess := func(h harness, xff string) int {
		resp, _ := h.doWith("GET", "/v1/jobs", "ytc_"+rand.Text(), "", map[string]string{"X-Forwarded-For": xff})
		return resp.StatusCode
	}
	direct := startConfigured(t, func(c *Config) { c.FailedAuthBurst, c.FailedAuthPerMinute = allowance, 1 })
	for i := range allowance {
		require.Equal(t, http.StatusUnauthorized, guess(direct, fmt.Sprintf("198.51.100.%d", i)))
	}
	require.Equal(t, http.StatusTooManyRequests, guess(direct, "198.51.100.200"), "a spoofed header from an untrusted peer is ignored")

	proxied := startConfigured(t, func(c *Config) {
		c.FailedAuthBurst, c.FailedAuthPerMinute = allowance, 1
		c.TrustedProxies = mustPrefixes(t, "127.0.0.0/8")
	})
	for range allowance {
		require.Equal(t, http.StatusUnauthorized, guess(proxied, "198.51.100.1"))
	}
	require.Equal(t, http.StatusTooManyRequests, guess(proxied, "198.51.100.1"))
	require.Equal(t, http.StatusTooManyRequests, guess(proxied, "203.0.113.9, 198.51.100.1"), "the client's own claims to the left are ignored")
	require.Equal(t, http.StatusUnauthorized, guess(proxied, "198.51.100.2"), "another client behind the proxy has its own allowance")

	client := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, proxied.front)
	req := connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: "x"})
	req.Header().Set("Authorization", "Bearer ytc_"+rand.Text())
	req.Header().Set("X-Forwarded-For", "198.51.100.1")
	_, err := client.GetJob(context.Background(), req)
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "the Connect door shares the allowance: %v", err)
}

// TestForwardedHostAndProtoAreTrustedOnlyFromConfiguredProxies: the URLs
// the edge hands out (an upload's Location, a share link's) and the web
// app's same-origin check take X-Forwarded-Host and X-Forwarded-Proto only
// from a proxy in TrustedProxies. From anyone else a forged host would send
// a client's upload to the forger's server, and pass a forged Origin.
func TestForwardedHostAndProtoAreTrustedOnlyFromConfiguredProxies(t *testing.T) {
	t.Parallel()
	forged := map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
	upload := func(base string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/v1/uploads", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer key-alice")
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", "10")
		for k, v := range forged {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		return resp.Header.Get("Location")
	}
	direct, _ := startTusEdge(t)
	require.Equal(t, direct+"/v1/uploads/abc", upload(direct), "a forged host and scheme from an untrusted peer are ignored")
	proxied, _ := startTusEdgeWith(t, func(c *Config) { c.TrustedProxies = mustPrefixes(t, "127.0.0.0/8") })
	require.Equal(t, "https://evil.example/v1/uploads/abc", upload(proxied), "a trusted proxy names the host and scheme its client reached")

	h := start(t)
	resp, b := h.do("POST", "/v1/jobs", "key-alice", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
	var j struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &j))
	resp, b = h.doWith("POST", "/v1/jobs/"+j.ID+"/shares", "key-alice", "", forged)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	var sh struct{ URL string }
	require.NoError(t, json.Unmarshal(b, &sh))
	require.Equal(t, "/s/"+fakeShareToken, sh.URL, "a share link's URL names no host: the browser's page adds its own")

	signIn := map[string]string{"Origin": "http://evil.example", "Content-Type": "application/json"}
	for k, v := range forged {
		signIn[k] = v
	}
	resp, b = h.doWith("POST", "/app-session", "", `{"key": "key-alice"}`, signIn)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, string(b))
	require.Equal(t, "forbidden", errCode(t, b), "another site's Origin, however the host is forged")
}

// TestEventStreamsAreCappedPerKey holds the plan's three streams open, over
// REST and Connect together; a fourth on either is too_many_streams; every
// way a stream ends gives its place back — a refused request, a client that
// hangs up, a Connect call cancelled, the job finishing — and core's watcher
// stops with it.
func TestEventStreamsAreCappedPerKey(t *testing.T) {
	t.Parallel()
	h := start(t)
	resp, b := h.do("POST", "/v1/jobs", "key-dave", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
	var job struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &job))

	openREST := func(id string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, h.base+"/v1/jobs/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer key-dave")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		if resp.StatusCode == http.StatusOK {
			line, err := bufio.NewReader(resp.Body).ReadString('\n') // the stream is surely held
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(line, "id: "), line)
			return resp, nil
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	client := ytcaptionv1connect.NewJobServiceClient(h2c(), h.front, connect.WithGRPC())
	openConnect := func(ctx context.Context) (*connect.ServerStreamForClient[ytcaptionv1.WatchJobResponse], error) {
		req := connect.NewRequest(&ytcaptionv1.WatchJobRequest{Id: job.ID})
		req.Header().Set("Authorization", "Bearer key-dave")
		stream, err := client.WatchJob(ctx, req)
		if err != nil {
			return nil, err
		}
		if !stream.Receive() {
			return nil, stream.Err()
		}
		return stream, nil
	}
	open := func() int {
		n, _ := strconv.Atoi(regexp.MustCompile(`(?m)^ytcaption_edge_event_streams (\d+)$`).FindStringSubmatch(h.metrics())[1])
		return n
	}

	for range 5 {
		resp, b := openREST("00000000-0000-4000-8000-000000000999")
		require.Equal(t, http.StatusNotFound, resp.StatusCode, string(b))
	}
	require.Zero(t, open(), "refused streams hold no place")

	rest1, _ := openREST(job.ID)
	rest2, _ := openREST(job.ID)
	cctx, cancelConnect := context.WithCancel(context.Background())
	defer cancelConnect()
	c1, err := openConnect(cctx)
	require.NoError(t, err)
	require.Equal(t, 3, open())
	require.Eventually(t, func() bool { return h.core.watching.Load() == 3 }, 5*time.Second, 10*time.Millisecond)

	resp, b = openREST(job.ID)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "too_many_streams", errCode(t, b))
	_, err = openConnect(context.Background())
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, connect.CodeResourceExhausted, ce.Code())
	require.Equal(t, "too_many_streams", errcode.OfConnect(ce))
	resp, _ = h.do("GET", "/v1/jobs/"+job.ID+"/events", "key-alice", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "another key is not capped by dave's streams")

	rest1.Body.Close() // the client hangs up
	require.Eventually(t, func() bool { return open() == 2 && h.core.watching.Load() == 2 }, 5*time.Second, 10*time.Millisecond,
		"a closed SSE stream frees its place, and core's watcher, at once")
	rest3, _ := openREST(job.ID)
	require.Equal(t, 3, open())

	cancelConnect()
	require.Eventually(t, func() bool { return open() == 2 }, 5*time.Second, 10*time.Millisecond, "a cancelled WatchJob frees its place")
	c2, err := openConnect(context.Background())
	require.NoError(t, err)
	_ = c1

	h.core.setStatus(job.ID, ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED)
	for c2.Receive() {
	}
	require.NoError(t, c2.Err())
	for _, r := range []*http.Response{rest2, rest3} {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		require.Contains(t, string(b), `"status":"succeeded"`)
		r.Body.Close()
	}
	require.Eventually(t, func() bool { return open() == 0 && h.core.watching.Load() == 0 }, 5*time.Second, 10*time.Millisecond,
		"finished streams give every place back")
}

// TestStreamsOutliveTheListenersTimeouts: with read and write timeouts far
// shorter than the calls, an SSE stream (over Fiber), a WatchJob over
// HTTP/1.1 (Connect) and one over h2c (gRPC) all stay open past them and
// deliver the job's end; a unary call core takes longer than the read
// timeout to answer is not cancelled by it either.
func TestStreamsOutliveTheListenersTimeouts(t *testing.T) {
	t.Parallel()
	const short = 300 * time.Millisecond
	h := startTuned(t, nil, func(e *Edge) {
		e.front.ReadTimeout = short
		e.app.Server().ReadTimeout, e.app.Server().WriteTimeout = short, short
	})
	resp, b := h.do("POST", "/v1/jobs", "key-alice", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
	var job struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &job))

	req, _ := http.NewRequest(http.MethodGet, h.base+"/v1/jobs/"+job.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer key-alice")
	sse, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer sse.Body.Close()
	require.Equal(t, http.StatusOK, sse.StatusCode)

	var streams []*connect.ServerStreamForClient[ytcaptionv1.WatchJobResponse]
	for _, client := range []ytcaptionv1connect.JobServiceClient{
		ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, h.front),
		ytcaptionv1connect.NewJobServiceClient(h2c(), h.front, connect.WithGRPC()),
	} {
		req := connect.NewRequest(&ytcaptionv1.WatchJobRequest{Id: job.ID})
		req.Header().Set("Authorization", "Bearer key-alice")
		s, err := client.WatchJob(context.Background(), req)
		require.NoError(t, err)
		require.True(t, s.Receive(), "%v", s.Err())
		streams = append(streams, s)
	}
	h.core.slow = make(chan struct{})
	time.AfterFunc(4*short, func() { close(h.core.slow) })
	get := connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: job.ID})
	get.Header().Set("Authorization", "Bearer key-alice")
	got, err := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, h.front).GetJob(context.Background(), get)
	require.NoError(t, err, "a unary call over HTTP/1.1 outlives the read timeout")
	require.Equal(t, job.ID, got.Msg.GetJob().GetId())
	// Now past every timeout of both listeners.
	h.core.setStatus(job.ID, ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED)
	for i, s := range streams {
		var last *ytcaptionv1.Job
		for s.Receive() {
			last = s.Msg().GetJob()
		}
		require.NoError(t, s.Err(), "stream %d", i)
		require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, last.GetStatus(), "stream %d", i)
	}
	all, err := io.ReadAll(sse.Body)
	require.NoError(t, err)
	require.Contains(t, string(all), `"status":"succeeded"`)
}

// TestUploadsCountInTheCreateBudget: Connect UploadJob and REST POST
// /v1/audio/transcriptions spend the key's create budget (2 at once for
// carol), not its read budget.
func TestUploadsCountInTheCreateBudget(t *testing.T) {
	t.Parallel()
	h := start(t)
	client := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, h.front)
	upload := func() (*connect.Response[ytcaptionv1.UploadJobResponse], error) {
		req := connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: []byte("RIFF")})
		req.Header().Set("Authorization", "Bearer key-carol")
		return client.UploadJob(context.Background(), req)
	}
	for range 2 {
		resp, err := upload()
		require.NoError(t, err)
		require.Equal(t, `"create";q=2;w=2`, resp.Header().Get("RateLimit-Policy"))
	}
	_, err := upload()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, connect.CodeResourceExhausted, ce.Code())
	require.Equal(t, "rate_limited", errcode.OfConnect(ce))
	require.Contains(t, ce.Meta().Get("RateLimit-Policy"), `"create"`)
	req := connect.NewRequest(&ytcaptionv1.ListJobsRequest{PageSize: 5})
	req.Header().Set("Authorization", "Bearer key-carol")
	list, err := client.ListJobs(context.Background(), req)
	require.NoError(t, err, "reads have their own budget")
	require.Equal(t, `"read";q=3;w=3`, list.Header().Get("RateLimit-Policy"))

	transcribe := func() (*http.Response, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", "a.wav")
		_, _ = fw.Write([]byte("RIFF"))
		_ = mw.WriteField("response_format", "vtt")
		_ = mw.Close()
		return h.doWith("POST", "/v1/audio/transcriptions", "key-carol-2", body.String(), map[string]string{"Content-Type": mw.FormDataContentType()})
	}
	for range 2 {
		resp, b := transcribe()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.Equal(t, `"create";q=2;w=2`, resp.Header.Get("RateLimit-Policy"))
	}
	resp, b := transcribe()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "rate_limited", errCode(t, b))
	require.Regexp(t, `^"create";r=0`, resp.Header.Get("RateLimit"))
}

func mustPrefixes(t *testing.T, s string) []netip.Prefix {
	t.Helper()
	p, err := clientaddr.ParsePrefixes(s)
	require.NoError(t, err)
	return p
}

// TestCompressedCallsThatInflateModestlyStillWork: clients that gzip their
// requests (connect-go WithSendGzip, gRPC's grpc-encoding) are still served
// — a job, and an upload of audio that barely compresses.
func TestCompressedCallsThatInflateModestlyStillWork(t *testing.T) {
	t.Parallel()
	h := start(t)
	audio := make([]byte, 2<<20)
	_, _ = rand.Read(audio)
	for name, client := range map[string]ytcaptionv1connect.JobServiceClient{
		"connect": ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, h.front, connect.WithSendGzip()),
		"grpc":    ytcaptionv1connect.NewJobServiceClient(h2c(), h.front, connect.WithGRPC(), connect.WithSendGzip()),
	} {
		req := connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "https://example.com/a.ogg"})
		req.Header().Set("Authorization", "Bearer key-alice")
		_, err := client.CreateJob(context.Background(), req)
		require.NoError(t, err, name)
		up := connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: audio})
		up.Header().Set("Authorization", "Bearer key-alice")
		_, err = client.UploadJob(context.Background(), up)
		require.NoError(t, err, name)
	}
}

// TestRefusedKeysAreCountedAcrossEdges: with Redis, an address's allowance
// of refused keys is shared — guesses spread over two edges are limited as
// one — and valid keys looked up on the way do not spend it.
func TestRefusedKeysAreCountedAcrossEdges(t *testing.T) {
	t.Parallel()
	const allowance = 10
	url := redistest.Start(t).URL()
	configure := func(c *Config) { c.RedisURL, c.FailedAuthBurst, c.FailedAuthPerMinute = url, allowance, 1 }
	a, b := startConfigured(t, configure), startConfigured(t, configure)
	for _, h := range []harness{a, b} {
		for _, key := range []string{"key-alice", "key-bob"} {
			resp, _ := h.do("GET", "/v1/jobs", key, "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	for i := range allowance {
		h := a
		if i%2 == 1 {
			h = b
		}
		resp, _ := h.do("GET", "/v1/jobs", "ytc_"+rand.Text(), "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "guess %d: four valid keys spent nothing", i+1)
	}
	for _, h := range []harness{a, b} {
		resp, body := h.do("GET", "/v1/jobs", "ytc_"+rand.Text(), "")
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
		resp, _ = h.do("GET", "/v1/jobs", "key-alice", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "a cached valid key still works")
	}
	require.Equal(t, int64(2+allowance/2), a.core.authCalls.Load())
}
