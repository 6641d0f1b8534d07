package agent

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/pgtest"
	"github.com/ytcaption/ytcaption/internal/stacktest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/waittest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// hourEngine stands in for an engine decoding an hour of speech: it emits
// 1,000 segments of 3.6 s, a few milliseconds apart, stops at the middle
// until the test lets it go on, and says when it has emitted the last.
type hourEngine struct {
	half, resume, emitted chan struct{}
}

const hourSegments = 1000

func (hourEngine) Name() string                      { return "sphinx" }
func (hourEngine) Capabilities() engine.Capabilities { return engine.Capabilities{} }
func (e hourEngine) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	for i := range hourSegments {
		if i == hourSegments/2 {
			close(e.half)
			<-e.resume
		}
		s := engine.Segment{StartMS: int64(i) * 3600, EndMS: int64(i+1) * 3600, Text: fmt.Sprintf("segment %d of the hour", i)}
		if err := emit(s); err != nil {
			return engine.Result{}, err
		}
		time.Sleep(4 * time.Millisecond) // decoding
	}
	close(e.emitted)
	return engine.Result{Language: "en"}, nil
}

// pushLog is a reverse proxy in front of core that notes when each
// PushSegments call arrives.
type pushLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (l *pushLog) proxy(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the agent's polls end by cancellation when it stops
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/PushSegments") {
			l.mu.Lock()
			l.times = append(l.times, time.Now())
			l.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSegmentBatchesRideOutAStoppedCore runs the agent against a real core
// process. An hour's transcript of 1,000 segments goes to core at most one
// push per 250 ms; core is stopped (SIGSTOP) for 5 s in the middle, and the
// engine emits the whole second half while core is still stopped — emit
// never waits on the network — and the stored transcript is complete: 1,000
// segments in order.
func TestSegmentBatchesRideOutAStoppedCore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs core with PostgreSQL and MinIO")
	}
	t.Parallel()
	bins := stacktest.Build(t)
	dbURL := pgtest.URL(t)
	minio := miniotest.Start(t)
	out, err := exec.Command(bins+"/ytcaption-core", "admin", "create-user", "--postgres-url", dbURL, "--name", "hour").CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := regexp.MustCompile(`\(([0-9a-f-]{36}),`).FindSubmatch(out)
	require.NotNil(t, m, "%s", out)
	userID := string(m[1])
	media := httptest.NewServer(http.FileServer(http.Dir(librivox)))
	t.Cleanup(media.Close)

	addr := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	metrics := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	core := stacktest.NewProcess(t, t.TempDir(), "core", bins+"/ytcaption-core", "serve", "--addr", addr, "--metrics-addr", metrics,
		"--postgres-url", dbURL, "--s3-endpoint", minio.Endpoint, "--s3-access-key", minio.AccessKey, "--s3-secret-key", minio.SecretKey,
		"--s3-bucket", "hour", "--service-token", "svc", "--node-tokens", "node", "--allow-private-urls", "--work-dir", t.TempDir(),
		"--log-format", "text")
	core.Start()
	coreURL := "http://" + addr
	stacktest.WaitReady(t, coreURL, "core")

	jobs := ytcaptionv1connect.NewJobServiceClient(&http.Client{Transport: &svcauth.Transport{Token: "svc"}}, coreURL)
	asUser := func(r connect.AnyRequest) { r.Header().Set(svcauth.UserHeader, userID) }
	off := false
	create := connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: media.URL + "/sense_and_sensibility_01_austen_64kb-0880.wav",
		Language: "en", SilenceGuard: &off, RepetitionGuard: &off})
	asUser(create)
	ctx := context.Background()
	created, err := jobs.CreateJob(ctx, create)
	require.NoError(t, err)
	id := created.Msg.GetJob().GetId()

	var pushes pushLog
	eng := hourEngine{half: make(chan struct{}), resume: make(chan struct{}), emitted: make(chan struct{})}
	a := newAgent(Config{CoreURL: pushes.proxy(t, coreURL).URL, NodeToken: "node", NodeID: "hour", WorkDir: t.TempDir(), PollTimeout: 5 * time.Second}, eng)
	actx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(actx) }()
	t.Cleanup(func() { stop(); <-stopped })

	waittest.Recv(t, eng.half, 2*time.Minute, "the engine never reached the middle of the hour")
	core.Signal(syscall.SIGSTOP)
	pausedAt := time.Now()
	close(eng.resume)
	// Not a timing: were emit to wait on core, the engine could not finish
	// before core is continued, which happens only after this.
	waittest.Recv(t, eng.emitted, time.Minute, "the engine's emits waited on the stopped core")
	time.Sleep(time.Until(pausedAt.Add(5 * time.Second))) // the outage lasts 5 s whatever the engine did
	core.Signal(syscall.SIGCONT)

	require.Eventually(t, func() bool {
		get := connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: id})
		asUser(get)
		resp, err := jobs.GetJob(ctx, get)
		return err == nil && resp.Msg.GetJob().GetStatus() == ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED
	}, 2*time.Minute, 100*time.Millisecond, "the job did not succeed")
	get := connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: id, Format: ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TSV})
	asUser(get)
	tr, err := jobs.GetTranscript(ctx, get)
	require.NoError(t, err)
	var texts []string
	for _, row := range strings.Split(strings.TrimSpace(string(tr.Msg.GetContent())), "\n") {
		if cols := strings.Split(row, "\t"); len(cols) == 3 && cols[0] != "start" {
			texts = append(texts, cols[2])
		}
	}
	require.Len(t, texts, hourSegments, "the whole hour, nothing lost")
	for i, text := range texts {
		require.Equal(t, fmt.Sprintf("segment %d of the hour", i), text, "in order")
	}

	// The node's one slot, as core's metrics show the fleet.
	resp, err := http.Get("http://" + metrics + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), "\nytcaption_core_gpu_node_slots{state=\"total\"} 1\n")

	pushes.mu.Lock()
	defer pushes.mu.Unlock()
	n := len(pushes.times)
	require.Greater(t, n, 1)
	elapsed := pushes.times[n-1].Sub(pushes.times[0])
	// Arrival times at the proxy: a few milliseconds of slack for the hop.
	require.LessOrEqual(t, n-1, int((elapsed+10*time.Millisecond)/pushInterval),
		"at most one push per %v: %d pushes in %v", pushInterval, n, elapsed)
	require.Less(t, n, hourSegments/10, "segments travel in batches, not one call each")
	t.Logf("%d segments in %d pushes over %v, core stopped 5 s in the middle", hourSegments, n, elapsed.Round(time.Millisecond))
}

// burstEngine emits n numbered segments as fast as it can, then says so.
type burstEngine struct {
	n       int
	emitted chan struct{}
	count   *atomic.Int64 // emits returned
}

func newBurstEngine(n int) burstEngine {
	return burstEngine{n: n, emitted: make(chan struct{}), count: new(atomic.Int64)}
}

func (burstEngine) Name() string                      { return "sphinx" }
func (burstEngine) Capabilities() engine.Capabilities { return engine.Capabilities{} }
func (e burstEngine) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	for i := range e.n {
		if err := emit(engine.Segment{StartMS: int64(i) * 1000, EndMS: int64(i+1) * 1000, Text: fmt.Sprintf("s%d", i)}); err != nil {
			return engine.Result{}, err
		}
		e.count.Add(1)
	}
	close(e.emitted)
	return engine.Result{Language: "en"}, nil
}

// TestEmitNeverWaitsOnCore: while core holds every push, the engine emits
// all its segments; once core answers (after refusing a few pushes, as a
// restarting core does), every segment arrives, in order, in a few batches,
// and the job completes only after the last of them.
func TestEmitNeverWaitsOnCore(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	f.pushGate, f.pushFails = make(chan struct{}), 2
	eng := newBurstEngine(1200)
	a, _, stopped := serve(t, f, eng)
	waittest.Recv(t, eng.emitted, time.Minute, "the engine's emits waited on core")
	close(f.pushGate)
	<-f.done
	a.Drain()
	waitRun(t, stopped)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotNil(t, f.completed, "failed: %v", f.failed)
	require.Len(t, f.segments, 1200)
	for i, s := range f.segments {
		require.Equal(t, int32(i), s.GetSeq())
	}
	require.Equal(t, int32(1200), f.completed.GetSegmentCount())
	require.Equal(t, 1200, f.atComplete, "CompleteJob only after the last batch is acknowledged")
	require.LessOrEqual(t, f.pushes, 2+3+1, "two refused, then batches of at most %d", maxPushBatch)
}

// TestAFullBufferHoldsTheEngine: with core away, the engine may run
// maxBuffered segments ahead and then waits for room, rather than hold an
// unbounded transcript in memory; when core answers it goes on, and nothing
// is lost.
func TestAFullBufferHoldsTheEngine(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	f.pushGate = make(chan struct{})
	eng := newBurstEngine(maxBuffered + 1)
	a, _, stopped := serve(t, f, eng)
	require.Eventually(t, func() bool { return eng.count.Load() >= maxBuffered }, time.Minute, 10*time.Millisecond)
	require.Never(t, func() bool { return eng.count.Load() > maxBuffered }, 300*time.Millisecond, 10*time.Millisecond,
		"the engine emitted past the buffer's cap while core held every push")
	close(f.pushGate)
	waittest.Recv(t, eng.emitted, time.Minute, "the engine did not go on once core answered")
	<-f.done
	a.Drain()
	waitRun(t, stopped)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.segments, maxBuffered+1)
	require.Equal(t, maxBuffered+1, f.atComplete)
}
