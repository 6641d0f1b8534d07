package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ytcaption/ytcaption/edge/internal/jobcache"
	"github.com/ytcaption/ytcaption/internal/consultest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

const token = "service-token"

// fakeCore implements core's JobService and AuthService in memory, over the
// real Connect wire, so the edge is tested exactly as it talks to core.
type fakeCore struct {
	ytcaptionv1connect.UnimplementedJobServiceHandler
	mu            sync.Mutex
	jobs          map[string]*ytcaptionv1.Job // id → job
	owner         map[string]string           // id → user
	authCalls     atomic.Int64
	authDown      atomic.Bool
	watching      atomic.Int64  // WatchJob calls running
	slow          chan struct{} // GetJob waits on it when set
	gate          chan struct{} // CreateJob waits on it when set, after a send on atGate
	atGate        chan struct{}
	lastUser      string
	lastRequestID string
}

func newFakeCore() *fakeCore {
	return &fakeCore{jobs: map[string]*ytcaptionv1.Job{}, owner: map[string]string{}}
}

func coded(code connect.Code, detail, msg string) error {
	ce := connect.NewError(code, errors.New(msg))
	if detail != "" {
		d, _ := connect.NewErrorDetail(&ytcaptionv1.ErrorDetail{Code: detail})
		ce.AddDetail(d)
	}
	return ce
}

func (f *fakeCore) Authenticate(ctx context.Context, req *connect.Request[ytcaptionv1.AuthenticateRequest]) (*connect.Response[ytcaptionv1.AuthenticateResponse], error) {
	f.authCalls.Add(1)
	if svcauth.Bearer(req.Header()) != token {
		return nil, coded(connect.CodeUnauthenticated, "unauthorized", "bad service token")
	}
	if f.authDown.Load() {
		return nil, coded(connect.CodeUnavailable, "", "database down")
	}
	switch req.Msg.GetApiKey() {
	case "key-alice":
		return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: "11111111-1111-1111-1111-111111111111", Role: "user"}), nil
	case "key-bob":
		return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: "22222222-2222-2222-2222-222222222222", Role: "user"}), nil
	case "key-carol", "key-carol-2": // a tight plan: two keys of one user, limited separately
		return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: "33333333-3333-3333-3333-333333333333", Role: "user",
			RateLimits: &ytcaptionv1.RateLimits{
				Create: &ytcaptionv1.RateLimit{PerSecond: 1, Burst: 2},
				Read:   &ytcaptionv1.RateLimit{PerSecond: 1, Burst: 3}, // slow to refill: tests spend it on a busy machine
			}}), nil
	case "key-dave": // a plan allowing three event streams at once
		return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: "44444444-4444-4444-4444-444444444444", Role: "user",
			RateLimits: &ytcaptionv1.RateLimits{MaxStreams: 3}}), nil
	}
	return nil, coded(connect.CodeUnauthenticated, "unauthorized", "invalid API key")
}

func (f *fakeCore) user(h http.Header) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastUser = h.Get(svcauth.UserHeader)
	f.lastRequestID = h.Get("X-Request-Id")
	return f.lastUser
}

func (f *fakeCore) find(user, id string) (*ytcaptionv1.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j, ok := f.jobs[id]; ok && f.owner[id] == user {
		return j, nil
	}
	return nil, coded(connect.CodeNotFound, "not_found", "no job "+id)
}

func (f *fakeCore) CreateJob(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobRequest]) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	u := f.user(req.Header())
	if f.gate != nil {
		f.atGate <- struct{}{}
		<-f.gate
	}
	if !strings.HasPrefix(req.Msg.GetUrl(), "http") {
		return nil, coded(connect.CodeInvalidArgument, "invalid_url", "only http and https URLs are supported")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(f.jobs)+1)
	j := &ytcaptionv1.Job{Id: id, Status: ytcaptionv1.JobStatus_JOB_STATUS_QUEUED, Url: req.Msg.GetUrl(), CanonicalUrl: req.Msg.GetUrl(),
		Language: req.Msg.GetLanguage(), CreatedAt: timestamppb.New(time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC))}
	f.jobs[id], f.owner[id] = j, u
	return connect.NewResponse(&ytcaptionv1.CreateJobResponse{Job: j}), nil
}

// UploadJob makes a job of the upload, finished at once, so the OpenAI
// route's wait for it ends.
func (f *fakeCore) UploadJob(ctx context.Context, req *connect.Request[ytcaptionv1.UploadJobRequest]) (*connect.Response[ytcaptionv1.UploadJobResponse], error) {
	u := f.user(req.Header())
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(f.jobs)+1)
	j := &ytcaptionv1.Job{Id: id, Status: ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, CreatedAt: timestamppb.Now()}
	f.jobs[id], f.owner[id] = j, u
	return connect.NewResponse(&ytcaptionv1.UploadJobResponse{Job: j}), nil
}

// WatchJob sends the job whenever its status changes, as core does, and
// ends once it is finished.
func (f *fakeCore) WatchJob(ctx context.Context, req *connect.Request[ytcaptionv1.WatchJobRequest], out *connect.ServerStream[ytcaptionv1.WatchJobResponse]) error {
	f.watching.Add(1)
	defer f.watching.Add(-1)
	u := f.user(req.Header())
	last := ytcaptionv1.JobStatus(-1)
	for {
		j, err := f.find(u, req.Msg.GetId())
		if err != nil {
			return err
		}
		f.mu.Lock()
		j = proto.CloneOf(j)
		f.mu.Unlock()
		if j.GetStatus() != last {
			if err := out.Send(&ytcaptionv1.WatchJobResponse{Job: j, Cursor: "1:0"}); err != nil {
				return err
			}
			last = j.GetStatus()
		}
		if jobcache.Finished(last) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// setStatus changes a job as a gpu-node would.
func (f *fakeCore) setStatus(id string, st ytcaptionv1.JobStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[id].Status = st
}

func (f *fakeCore) GetJob(ctx context.Context, req *connect.Request[ytcaptionv1.GetJobRequest]) (*connect.Response[ytcaptionv1.GetJobResponse], error) {
	if f.slow != nil {
		<-f.slow
	}
	j, err := f.find(f.user(req.Header()), req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&ytcaptionv1.GetJobResponse{Job: j}), nil
}

func (f *fakeCore) ListJobs(ctx context.Context, req *connect.Request[ytcaptionv1.ListJobsRequest]) (*connect.Response[ytcaptionv1.ListJobsResponse], error) {
	u := f.user(req.Header())
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &ytcaptionv1.ListJobsResponse{}
	for id, j := range f.jobs {
		if f.owner[id] == u && len(resp.Jobs) < int(req.Msg.GetPageSize()) {
			resp.Jobs = append(resp.Jobs, j)
		}
	}
	if req.Msg.GetPageToken() == "" && len(resp.Jobs) > 0 {
		resp.NextPageToken = "page-2"
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeCore) CancelJob(ctx context.Context, req *connect.Request[ytcaptionv1.CancelJobRequest]) (*connect.Response[ytcaptionv1.CancelJobResponse], error) {
	j, err := f.find(f.user(req.Header()), req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	j.Status = ytcaptionv1.JobStatus_JOB_STATUS_CANCELLED
	j.Error = &ytcaptionv1.JobError{Code: "cancelled", Message: "cancelled by the user"}
	f.mu.Unlock()
	return connect.NewResponse(&ytcaptionv1.CancelJobResponse{Job: j}), nil
}

// CreateShare makes a link of any job of the caller's, with a fixed token.
func (f *fakeCore) CreateShare(ctx context.Context, req *connect.Request[ytcaptionv1.CreateShareRequest]) (*connect.Response[ytcaptionv1.CreateShareResponse], error) {
	if _, err := f.find(f.user(req.Header()), req.Msg.GetJobId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&ytcaptionv1.CreateShareResponse{Token: fakeShareToken,
		Share: &ytcaptionv1.Share{Id: "share-1", JobId: req.Msg.GetJobId(), CreatedAt: timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))}}), nil
}

// fakeShareToken is every share link's token in the fake core.
const fakeShareToken = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func (f *fakeCore) GetTranscript(ctx context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (*connect.Response[ytcaptionv1.GetTranscriptResponse], error) {
	j, err := f.find(f.user(req.Header()), req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	if j.GetStatus() != ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED {
		return nil, coded(connect.CodeFailedPrecondition, "transcript_not_ready", "job is queued")
	}
	return connect.NewResponse(&ytcaptionv1.GetTranscriptResponse{ContentType: "text/vtt; charset=utf-8", Content: []byte("WEBVTT\n\n")}), nil
}

type harness struct {
	t     *testing.T
	base  string // REST
	front string // Connect/gRPC front door
	core  *fakeCore
	edge  *Edge
}

// metrics scrapes the edge's metrics handler, which no public port serves.
func (h harness) metrics() string {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.edge.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(h.t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

func start(t *testing.T) harness { return startWith(t, "") }

// startWith runs an edge whose rate limits live in the Redis at redisURL
// (empty: in process).
func startWith(t *testing.T, redisURL string) harness {
	t.Helper()
	return startConfigured(t, func(c *Config) { c.RedisURL = redisURL })
}

// startConfigured runs an edge in front of a fake core, with configure
// applied to its Config.
func startConfigured(t *testing.T, configure func(*Config)) harness {
	t.Helper()
	return startTuned(t, configure, nil)
}

// startTuned is startConfigured with tune applied to the Edge before it
// serves (to shorten its listeners' timeouts).
func startTuned(t *testing.T, configure func(*Config), tune func(*Edge)) harness {
	t.Helper()
	f := newFakeCore()
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(f))
	mux.Handle(ytcaptionv1connect.NewAuthServiceHandler(f))
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		if f.authDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	core := httptest.NewServer(mux)
	t.Cleanup(core.Close)
	cfg := Config{CoreURL: core.URL, ServiceToken: token, MaxBodyBytes: 1024}
	if configure != nil {
		configure(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	if tune != nil {
		tune(e)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, ln, cln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return harness{t: t, base: "http://" + ln.Addr().String(), front: "http://" + cln.Addr().String(), core: f, edge: e}
}

func (h harness) do(method, path, key, body string) (*http.Response, []byte) {
	h.t.Helper()
	return h.doWith(method, path, key, body, nil)
}

// doWith sends a request with extra headers.
func (h harness) doWith(method, path, key, body string, header map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	require.NoError(h.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp, b
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	require.NotEmpty(t, e.Error.Message, string(b))
	return e.Error.Code
}

func TestJobRoutes(t *testing.T) {
	t.Parallel()
	h := start(t)
	resp, b := h.do("POST", "/v1/jobs", "key-alice", `{"url":"https://example.com/a.ogg","language":"en"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
	require.JSONEq(t, `{"id":"00000000-0000-4000-8000-000000000001","status":"queued","url":"https://example.com/a.ogg",
		"canonical_url":"https://example.com/a.ogg","language":"en","progress":0,"attempt":0,"revision":0,"created_at":"2026-11-22T10:00:00.123Z"}`, string(b))
	require.Equal(t, "11111111-1111-1111-1111-111111111111", h.core.lastUser, "the edge tells core who the user is")
	id := "00000000-0000-4000-8000-000000000001"

	resp, b = h.do("GET", "/v1/jobs/"+id, "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	resp, b = h.do("GET", "/v1/jobs/"+id, "key-bob", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "not_found", errCode(t, b))

	resp, b = h.do("GET", "/v1/jobs?limit=5", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var page struct {
		Jobs       []map[string]any `json:"jobs"`
		NextCursor string           `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(b, &page))
	require.Len(t, page.Jobs, 1)
	require.Equal(t, "page-2", page.NextCursor)
	resp, b = h.do("GET", "/v1/jobs?cursor=page-2", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(b), "next_cursor", "omitted on the last page")
	for _, bad := range []string{"0", "101", "x"} {
		resp, b = h.do("GET", "/v1/jobs?limit="+bad, "key-alice", "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
		require.Equal(t, "invalid_argument", errCode(t, b))
	}

	resp, b = h.do("GET", "/v1/jobs/"+id+"/transcript", "key-alice", "")
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Equal(t, "transcript_not_ready", errCode(t, b), "core's code passes through")
	resp, b = h.do("GET", "/v1/jobs/"+id+"/transcript?format=docx", "key-alice", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "invalid_argument", errCode(t, b))
	h.core.mu.Lock()
	h.core.jobs[id].Status = ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED
	h.core.mu.Unlock()
	resp, b = h.do("GET", "/v1/jobs/"+id+"/transcript?format=vtt", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/vtt; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "WEBVTT\n\n", string(b))

	resp, b = h.do("DELETE", "/v1/jobs/"+id, "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.Contains(t, string(b), `"status":"cancelled"`)
	require.Contains(t, string(b), `"error":{"code":"cancelled"`)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, tc := range []struct {
		method, path, key, body string
		status                  int
		code                    string
	}{
		{"GET", "/v1/jobs", "", "", 401, "unauthorized"},
		{"GET", "/v1/jobs", "key-mallory", "", 401, "unauthorized"},
		{"POST", "/v1/jobs", "key-alice", `{"url":"ftp://x"}`, 400, "invalid_url"},
		{"POST", "/v1/jobs", "key-alice", `{"url":""}`, 400, "invalid_url"},
		{"POST", "/v1/jobs", "key-alice", `{"url":"https://x","colour":"red"}`, 400, "invalid_argument"},
		{"POST", "/v1/jobs", "key-alice", `{"url":42}`, 400, "invalid_argument"},
		{"POST", "/v1/jobs", "key-alice", `{"url":"https://x"`, 400, "invalid_json"},
		{"POST", "/v1/jobs", "key-alice", `{"url":"https://x"} {}`, 400, "invalid_json"},
		{"POST", "/v1/jobs", "key-alice", ``, 400, "invalid_json"},
		{"POST", "/v1/jobs", "key-alice", `{"url":"https://x/` + strings.Repeat("a", 2000) + `"}`, 413, "request_too_large"},
		{"GET", "/v2/nothing", "key-alice", "", 404, "not_found"},
		{"PUT", "/v1/jobs", "key-alice", "", 405, "method_not_allowed"},
	} {
		resp, b := h.do(tc.method, tc.path, tc.key, tc.body)
		require.Equal(t, tc.status, resp.StatusCode, "%s %s %s: %s", tc.method, tc.path, tc.body, b)
		require.Equal(t, tc.code, errCode(t, b), "%s %s", tc.method, tc.path)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
}

func TestAuthIsCachedAndCoreOutageIsNot401(t *testing.T) {
	t.Parallel()
	h := start(t)
	for range 5 {
		resp, _ := h.do("GET", "/v1/jobs", "key-alice", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Equal(t, int64(1), h.core.authCalls.Load(), "one lookup for five requests")

	h.core.authDown.Store(true)
	resp, b := h.do("GET", "/v1/jobs", "key-bob", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "an outage must not look like a bad key")
	require.Equal(t, "unavailable", errCode(t, b))
	resp, _ = h.do("GET", "/v1/jobs", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "cached keys keep working through a short outage")
	resp, _ = h.do("GET", "/health/ready", "", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, _ = h.do("GET", "/health/live", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.do("GET", "/v1/jobs/00000000-0000-4000-8000-000000000042", "key-alice", "")
	h.do("GET", "/no/such/route", "", "")
	b := h.metrics()
	require.Contains(t, b, `ytcaption_edge_http_requests_total{code="404",method="GET",route="/v1/jobs/:id"} 1`)
	require.Contains(t, b, `route="unmatched"`)
	require.NotContains(t, b, "000000000042", "raw paths never become labels")
	require.Contains(t, b, "ytcaption_edge_http_request_duration_seconds_bucket")
}

// TestMetricsAreOffThePublicPorts: neither public listener serves /metrics;
// the metrics listener does.
func TestMetricsAreOffThePublicPorts(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, u := range []string{h.base + "/metrics", h.front + "/metrics"} {
		resp, err := http.Get(u)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, u)
		require.NotContains(t, string(b), "go_goroutines", u)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.edge.ServeMetrics(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(b), "go_goroutines")
	require.Contains(t, string(b), "ytcaption_edge_event_streams")
	cancel()
	require.NoError(t, <-done)
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	f := newFakeCore()
	f.slow = make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(f))
	mux.Handle(ytcaptionv1connect.NewAuthServiceHandler(f))
	core := httptest.NewServer(mux)
	defer core.Close()
	e, err := New(Config{CoreURL: core.URL, ServiceToken: token})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, ln, nil) }()

	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/jobs/x", nil)
		req.Header.Set("Authorization", "Bearer key-alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return f.authCalls.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel() // shutdown begins while the request waits on core
	select {
	case <-done:
		t.Fatal("Serve returned before the in-flight request finished")
	case <-time.After(200 * time.Millisecond):
	}
	close(f.slow)
	require.Equal(t, http.StatusNotFound, <-got, "the in-flight request got its real answer")
	require.NoError(t, <-done)
}

// TestCoreIsFoundThroughConsul: with --core-url dead, the edge reaches core
// at the address Consul's health query gives, and registers itself
// (checked against Consul's documented HTTP API).
func TestCoreIsFoundThroughConsul(t *testing.T) {
	consul := consultest.Start(t)
	h := startConfigured(t, func(c *Config) {
		u, err := url.Parse(c.CoreURL)
		require.NoError(t, err)
		consul.Set(2, u.Host)
		c.CoreURL = "http://127.0.0.1:1" // the fallback, dead: only Consul's answer works
		c.ConsulAddr, c.AdvertiseAddr = consul.Addr(), "edge-1.internal"
	})
	require.Eventually(t, func() bool {
		resp, _ := h.do("GET", "/v1/jobs", "key-alice", "")
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond, "core reached through Consul")
	var reg map[string]any
	require.Eventually(t, func() bool { reg = consul.RegisteredService("ytcaption-edge"); return reg != nil }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "ytcaption-edge", reg["Name"])
	require.Equal(t, "edge-1.internal", reg["Address"])
	require.Contains(t, reg["Check"].(map[string]any)["HTTP"], "/health/ready")
}
