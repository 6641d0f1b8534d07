package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/backoff"
	"github.com/ytcaption/ytcaption/internal/clocktest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/waittest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

const librivox = "/usr/share/pocketsphinx/test/data/librivox"

// fakeCore is a WorkerService that hands out its assignments in order and
// records what the agent sends back. done closes when the agent polls again
// as an idle node (not prefetching): by then it has finished everything it
// does for its jobs.
type fakeCore struct {
	ytcaptionv1connect.UnimplementedWorkerServiceHandler
	mu          sync.Mutex
	assignment  *ytcaptionv1.Assignment
	more        []*ytcaptionv1.Assignment // handed out after assignment
	tokens      []string
	segments    []*ytcaptionv1.Segment
	completed   *ytcaptionv1.CompleteJobRequest
	completions []string // job ids, in order
	failed      *ytcaptionv1.FailJobRequest
	failCodes   []string                               // every FailJob's code, in order
	failedJobs  map[string]*ytcaptionv1.FailJobRequest // every FailJob, by job: a node reports side by side, so the last is any job's
	released    *ytcaptionv1.ReleaseJobRequest
	acquires    int
	carried     []string // job ids handed out by a completion's next (complete-and-next)
	models      []string // what the last poll advertised
	polls       []*ytcaptionv1.AcquireJobRequest
	prefetches  int  // polls made while the engine was busy
	drainReply  bool // answer drain to every heartbeat
	heartbeats  int
	cancelAfter int                // answer cancel to the heartbeat after this many (0: never)
	cancelJob   string             // answer cancel to every heartbeat of this job
	beats       map[string][]int64 // each job's heartbeats' epochs
	beatEvery   time.Duration      // the heartbeat interval core asks for; 0: 50 ms
	loseOnPush  bool               // answer lease_lost to the first push
	idleFirst   bool               // give prefetch polls nothing, as core's prefetch grace does while idle slots poll
	pushGate    chan struct{}      // non-nil: pushes wait until it is closed
	pushFails   int                // answer unavailable to this many pushes first
	pushes      int                // PushSegments calls
	atComplete  int                // segments stored when CompleteJob came
	done        chan struct{}
	once        sync.Once
}

func newFakeCore(a *ytcaptionv1.Assignment) *fakeCore {
	return &fakeCore{assignment: a, done: make(chan struct{})}
}

func (f *fakeCore) finish() { f.once.Do(func() { close(f.done) }) }

func (f *fakeCore) AcquireJob(ctx context.Context, req *connect.Request[ytcaptionv1.AcquireJobRequest]) (*connect.Response[ytcaptionv1.AcquireJobResponse], error) {
	f.mu.Lock()
	f.tokens = append(f.tokens, svcauth.Bearer(req.Header()))
	f.acquires++
	a := f.handOut(req.Msg)
	f.mu.Unlock()
	switch {
	case a != nil:
		return connect.NewResponse(&ytcaptionv1.AcquireJobResponse{Assignment: a}), nil
	case req.Msg.GetPrefetch():
		backoff.Sleep(ctx, 20*time.Millisecond) // nothing to prefetch: answer empty soon, so the idle poll follows
	default:
		f.finish()   // the agent is back for more: its jobs are fully handled
		<-ctx.Done() // nothing more: hold the poll like core does
	}
	return connect.NewResponse(&ytcaptionv1.AcquireJobResponse{}), nil
}

// handOut is the next assignment for poll, if any: AcquireJob's, or a
// completion's next. f.mu is held.
func (f *fakeCore) handOut(poll *ytcaptionv1.AcquireJobRequest) *ytcaptionv1.Assignment {
	f.models = poll.GetModels()
	f.polls = append(f.polls, poll)
	if poll.GetPrefetch() {
		f.prefetches++
	}
	if f.idleFirst && poll.GetPrefetch() {
		return nil
	}
	a := f.assignment
	f.assignment = nil
	if len(f.more) > 0 {
		f.assignment, f.more = f.more[0], f.more[1:]
	}
	return a
}

func leaseLostError() error {
	ce := connect.NewError(connect.CodeFailedPrecondition, errors.New("lease lost"))
	d, _ := connect.NewErrorDetail(&ytcaptionv1.ErrorDetail{Code: "lease_lost"})
	ce.AddDetail(d)
	return ce
}

func (f *fakeCore) Heartbeat(ctx context.Context, req *connect.Request[ytcaptionv1.HeartbeatRequest]) (*connect.Response[ytcaptionv1.HeartbeatResponse], error) {
	f.mu.Lock()
	f.heartbeats++
	if f.beats == nil {
		f.beats = map[string][]int64{}
	}
	f.beats[req.Msg.GetJobId()] = append(f.beats[req.Msg.GetJobId()], req.Msg.GetEpoch())
	cancel := f.cancelAfter > 0 && f.heartbeats > f.cancelAfter || f.cancelJob == req.Msg.GetJobId()
	drain, every := f.drainReply, f.beatEvery
	f.mu.Unlock()
	if every == 0 {
		every = 50 * time.Millisecond
	}
	return connect.NewResponse(&ytcaptionv1.HeartbeatResponse{
		Cancel: cancel, Drain: drain, LeaseExpiresAt: timestamppb.New(time.Now().Add(30 * time.Second)), HeartbeatInterval: durationpb.New(every),
	}), nil
}

func (f *fakeCore) PushSegments(ctx context.Context, req *connect.Request[ytcaptionv1.PushSegmentsRequest]) (*connect.Response[ytcaptionv1.PushSegmentsResponse], error) {
	if f.pushGate != nil {
		select {
		case <-f.pushGate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes++
	if f.pushFails > 0 {
		f.pushFails--
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("core restarting"))
	}
	if f.loseOnPush {
		return nil, leaseLostError()
	}
	f.segments = append(f.segments, req.Msg.GetSegments()...)
	return connect.NewResponse(&ytcaptionv1.PushSegmentsResponse{}), nil
}

func (f *fakeCore) CompleteJob(ctx context.Context, req *connect.Request[ytcaptionv1.CompleteJobRequest]) (*connect.Response[ytcaptionv1.CompleteJobResponse], error) {
	f.mu.Lock()
	f.completed = req.Msg
	f.completions = append(f.completions, req.Msg.GetJobId())
	f.atComplete = len(f.segments)
	var next *ytcaptionv1.Assignment
	if req.Msg.GetNext() != nil {
		if next = f.handOut(req.Msg.GetNext()); next != nil {
			f.carried = append(f.carried, next.GetJobId())
		}
	}
	f.mu.Unlock()
	return connect.NewResponse(&ytcaptionv1.CompleteJobResponse{Next: next}), nil
}

func (f *fakeCore) FailJob(ctx context.Context, req *connect.Request[ytcaptionv1.FailJobRequest]) (*connect.Response[ytcaptionv1.FailJobResponse], error) {
	f.mu.Lock()
	f.failed = req.Msg
	f.failCodes = append(f.failCodes, req.Msg.GetError().GetCode())
	if f.failedJobs == nil {
		f.failedJobs = map[string]*ytcaptionv1.FailJobRequest{}
	}
	f.failedJobs[req.Msg.GetJobId()] = req.Msg
	f.mu.Unlock()
	return connect.NewResponse(&ytcaptionv1.FailJobResponse{}), nil
}

func (f *fakeCore) ReleaseJob(ctx context.Context, req *connect.Request[ytcaptionv1.ReleaseJobRequest]) (*connect.Response[ytcaptionv1.ReleaseJobResponse], error) {
	f.mu.Lock()
	f.released = req.Msg
	f.mu.Unlock()
	return connect.NewResponse(&ytcaptionv1.ReleaseJobResponse{}), nil
}

// run serves the fake core and an audio server, runs an agent with eng until
// the fake says the job is over, and stops the agent. opts adjust the agent's
// Config before it is built.
func run(t *testing.T, f *fakeCore, eng engine.Engine, opts ...func(*Config)) {
	t.Helper()
	audio := httptest.NewServer(http.FileServer(http.Dir(librivox)))
	t.Cleanup(audio.Close)
	if !strings.HasPrefix(f.assignment.AudioUrl, "http") {
		f.assignment.AudioUrl = audio.URL + "/" + f.assignment.AudioUrl
	}
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewWorkerServiceHandler(f))
	core := httptest.NewServer(mux)
	t.Cleanup(core.Close)

	cfg := Config{CoreURL: core.URL, NodeToken: "node-secret", NodeID: "n1", WorkDir: t.TempDir(), PollTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	a := newAgent(cfg, eng)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(ctx) }()
	waittest.Recv(t, f.done, 2*time.Minute, "the job did not end")
	cancel()
	require.NoError(t, waittest.Recv(t, stopped, 30*time.Second, "the agent did not stop"))
}

func assignment(clip string) *ytcaptionv1.Assignment {
	return &ytcaptionv1.Assignment{
		JobId: "job-1", Epoch: 7, AudioUrl: clip, Language: "en", DurationSeconds: 7.1,
		LeaseExpiresAt: timestamppb.New(time.Now().Add(30 * time.Second)), HeartbeatInterval: durationpb.New(50 * time.Millisecond),
	}
}

// withMetrics has the agent register its metrics with reg.
func withMetrics(reg prometheus.Registerer) func(*Config) {
	return func(c *Config) { c.Metrics = reg }
}

// timedEngine is an engine that takes exactly took on clock per run.
type timedEngine struct {
	engine.Engine
	clock *clocktest.Clock
	took  time.Duration
}

func (e timedEngine) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	defer e.clock.Advance(e.took)
	return e.Engine.Transcribe(ctx, req, emit)
}

func TestAgentTranscribesWithPocketsphinx(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0870.wav"))
	reg := prometheus.NewRegistry()
	// The meters' clock stands still but for the engine's 3 s and 5 s after
	// the job, so the busy and idle seconds are known exactly.
	clock := clocktest.New()
	eng := timedEngine{Engine: engine.NewSphinx(engine.SphinxConfig{}), clock: clock, took: 3 * time.Second}
	run(t, f, eng, withMetrics(reg), func(c *Config) { c.now = clock.Now })
	clock.Advance(5 * time.Second)
	metrics := map[string]float64{}
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				metrics[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				metrics[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	require.Equal(t, 3.0, metrics["ytcaption_gpu_node_busy_seconds_total"], "the engine's time")
	require.Equal(t, 5.0, metrics["ytcaption_gpu_node_idle_seconds_total"], "the node's life but the engine's time")
	require.Equal(t, 1.0, metrics["ytcaption_gpu_node_realtime_factor"], "one job's real-time factor")
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotNil(t, f.completed, "failed: %v", f.failed)
	require.Equal(t, int64(7), f.completed.GetEpoch(), "the epoch travels with every call")
	require.Equal(t, int32(len(f.segments)), f.completed.GetSegmentCount())
	require.Equal(t, "en", f.completed.GetDetectedLanguage())
	require.NotEmpty(t, f.segments)
	for i, s := range f.segments {
		require.Equal(t, int32(i), s.GetSeq(), "seq 0..n-1 without gaps")
		require.NotEmpty(t, s.GetWords())
	}
	require.Equal(t, "node-secret", f.tokens[0])
	require.Greater(t, f.heartbeats, 0)
}

// blockingEngine emits one segment, then waits for cancellation.
type blockingEngine struct{ stopped chan struct{} }

func (blockingEngine) Name() string                      { return "sphinx" }
func (blockingEngine) Capabilities() engine.Capabilities { return engine.Capabilities{} }
func (e blockingEngine) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	defer close(e.stopped)
	if err := emit(engine.Segment{StartMS: 0, EndMS: 1000, Text: "hello"}); err != nil {
		return engine.Result{}, err
	}
	<-ctx.Done()
	return engine.Result{}, ctx.Err()
}

func TestCancelInHeartbeatStopsTheEngine(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	f.cancelAfter = 2
	eng := blockingEngine{stopped: make(chan struct{})}
	run(t, f, eng)
	waittest.Recv(t, eng.stopped, 10*time.Second, "engine not stopped after the cancel")
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Nil(t, f.completed, "a cancelled job is not completed")
	require.Nil(t, f.failed, "nor failed: core already knows")
	require.LessOrEqual(t, len(f.segments), 1, "what went before the cancel is kept")
}

func TestLeaseLostOnPushDropsTheJob(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	f.loseOnPush = true
	eng := blockingEngine{stopped: make(chan struct{})}
	run(t, f, eng)
	<-eng.stopped
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Nil(t, f.completed)
	require.Nil(t, f.failed, "a stale epoch must not write anything")
}

type failingEngine struct{ err error }

func (failingEngine) Name() string                      { return "sphinx" }
func (failingEngine) Capabilities() engine.Capabilities { return engine.Capabilities{} }
func (e failingEngine) Transcribe(context.Context, engine.Request, func(engine.Segment) error) (engine.Result, error) {
	return engine.Result{}, e.err
}

func TestEngineFailureIsReported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err       error
		code      string
		retryable bool
	}{
		{errors.New("segfault"), "engine_failed", true},
		{engine.ErrUnsupported, "unsupported_option", false},
	} {
		f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
		run(t, f, failingEngine{tc.err})
		require.NotNil(t, f.failed)
		require.Equal(t, tc.code, f.failed.GetError().GetCode())
		require.Equal(t, tc.retryable, f.failed.GetRetryable())
	}
}

func TestMissingAudioIsRetryable(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("no-such-file.wav"))
	run(t, f, failingEngine{errors.New("never called")})
	require.Equal(t, "audio_unavailable", f.failed.GetError().GetCode())
	require.True(t, f.failed.GetRetryable())
	require.NotContains(t, f.failed.GetError().GetMessage(), "http://", "no presigned URL in messages")
}

// TestStoreFaultsHandTheJobBackForLater: when the blob store does not
// answer, answers with a server error or stops mid-body, the job is not at
// fault: it goes back to core with a pause and no attempt spent, where a
// missing file (above) is a failed attempt.
func TestStoreFaultsHandTheJobBackForLater(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write([]byte("RIFF"))
		panic(http.ErrAbortHandler) // the connection drops mid-body
	}))
	t.Cleanup(cut.Close)
	for name, url := range map[string]string{"refused": "http://127.0.0.1:1/a.wav", "503": down.URL + "/a.wav", "cut": cut.URL + "/a.wav"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCore(assignment(url))
			run(t, f, failingEngine{errors.New("never called")})
			require.Nil(t, f.failed, "no attempt is spent")
			require.NotNil(t, f.released)
			require.Equal(t, handBackDelay.Milliseconds(), f.released.GetRetryAfterMs())
		})
	}
}

// TestAFullDiskIsTheNodesFault: ENOSPC or a quota on the node's disk is
// errDiskFull (handed back), any other local error is not.
func TestAFullDiskIsTheNodesFault(t *testing.T) {
	require.ErrorIs(t, local(fmt.Errorf("write audio file: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})), errDiskFull)
	require.ErrorIs(t, local(fmt.Errorf("write: %w", syscall.EDQUOT)), errDiskFull)
	require.NotErrorIs(t, local(fmt.Errorf("create: %w", os.ErrPermission)), errDiskFull)
}

func TestPermanentRefusalEndsRun(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewWorkerServiceHandler(&ytcaptionv1connect.UnimplementedWorkerServiceHandler{}))
	core := httptest.NewServer(mux)
	defer core.Close()
	a := newAgent(Config{CoreURL: core.URL, NodeToken: "t", NodeID: "n", WorkDir: t.TempDir(), PollTimeout: time.Second}, failingEngine{})
	err := a.Run(context.Background())
	require.Error(t, err)
	require.Equal(t, connect.CodeUnimplemented, connect.CodeOf(err))
}

// gatedEngine emits one segment, says it has started, and finishes when the
// test opens the gate (or fails with the context when cancelled).
type gatedEngine struct{ started, gate chan struct{} }

func (gatedEngine) Name() string                      { return "sphinx" }
func (gatedEngine) Capabilities() engine.Capabilities { return engine.Capabilities{} }
func (e gatedEngine) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	if err := emit(engine.Segment{StartMS: 0, EndMS: 1000, Text: "hello"}); err != nil {
		return engine.Result{}, err
	}
	select {
	case <-e.started: // a later job: the engine runs one job at a time
	default:
		close(e.started)
	}
	select {
	case <-e.gate:
		return engine.Result{Language: "en"}, nil
	case <-ctx.Done():
		return engine.Result{}, ctx.Err()
	}
}

// serve starts the fake core and an agent with eng; it returns the agent, a
// cancel for its context, and the channel Run's result arrives on.
func serve(t testing.TB, f *fakeCore, eng engine.Engine, opts ...func(*Config)) (*Agent, context.CancelFunc, <-chan error) {
	t.Helper()
	audio := httptest.NewServer(http.FileServer(http.Dir(librivox)))
	t.Cleanup(audio.Close)
	for _, asg := range append([]*ytcaptionv1.Assignment{f.assignment}, f.more...) {
		asg.AudioUrl = audio.URL + "/" + asg.AudioUrl
	}
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewWorkerServiceHandler(f))
	core := httptest.NewServer(mux)
	t.Cleanup(core.Close)
	cfg := Config{CoreURL: core.URL, NodeToken: "t", NodeID: "n1", WorkDir: t.TempDir(), PollTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	a := newAgent(cfg, eng)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(ctx) }()
	return a, cancel, stopped
}

func waitRun(t *testing.T, stopped <-chan error) {
	t.Helper()
	require.NoError(t, waittest.Recv(t, stopped, 30*time.Second, "Run did not return"))
}

func TestDrainFinishesTheJobThenStops(t *testing.T) {
	t.Parallel()
	for _, viaHeartbeat := range []bool{false, true} {
		f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
		next := assignment("sense_and_sensibility_01_austen_64kb-0880.wav")
		next.JobId = "job-2"
		f.more = []*ytcaptionv1.Assignment{next}
		eng := gatedEngine{started: make(chan struct{}), gate: make(chan struct{})}
		a, _, stopped := serve(t, f, eng)
		<-eng.started
		require.Eventually(t, func() bool {
			m, _ := filepath.Glob(filepath.Join(a.cfg.WorkDir, "audio-job-2-*.wav"))
			return len(m) == 1
		}, 10*time.Second, 10*time.Millisecond, "the node prefetches job-2 while job-1 transcribes")
		if !viaHeartbeat {
			a.Drain() // first SIGTERM
		} else {
			f.mu.Lock()
			f.drainReply = true
			f.mu.Unlock()
			require.Eventually(t, a.isDraining, 10*time.Second, 10*time.Millisecond, "core's drain reply reaches the agent")
		}
		require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.released != nil },
			10*time.Second, 10*time.Millisecond, "the prefetched job goes back to core at once")
		select {
		case <-stopped:
			t.Fatal("Run returned before the job in hand finished")
		case <-time.After(100 * time.Millisecond):
		}
		close(eng.gate)
		waitRun(t, stopped)
		f.mu.Lock()
		require.Equal(t, []string{"job-1"}, f.completions, "the job in hand is finished")
		require.Equal(t, "job-2", f.released.GetJobId())
		require.Nil(t, f.failed)
		f.mu.Unlock()
	}
}

// TestPrefetchDownloadsTheNextAudioDuringTranscription holds the engine on
// job-1 until job-2's audio is on disk: the engine starts job-2 with no
// download left to wait for.
func TestPrefetchDownloadsTheNextAudioDuringTranscription(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	next := assignment("sense_and_sensibility_01_austen_64kb-0880.wav")
	next.JobId, next.Epoch = "job-2", 3
	f.more = []*ytcaptionv1.Assignment{next}
	eng := gatedEngine{started: make(chan struct{}), gate: make(chan struct{})}
	a, _, stopped := serve(t, f, eng)
	<-eng.started
	require.Eventually(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(a.cfg.WorkDir, "audio-job-2-3.wav"))
		return len(m) == 1
	}, 10*time.Second, 10*time.Millisecond, "job-2's audio arrives while job-1 is in the engine")
	f.mu.Lock()
	require.GreaterOrEqual(t, f.prefetches, 1, "the poll made while busy says so, so core favours idle nodes")
	require.Empty(t, f.completions)
	f.mu.Unlock()
	close(eng.gate) // both jobs run through the (now open) gate
	<-f.done
	a.Drain()
	waitRun(t, stopped)
	f.mu.Lock()
	defer f.mu.Unlock()
	// A finished job's completion goes to core in the background while the
	// slot's engine starts the next (edbf4cf): the two may arrive either way.
	require.ElementsMatch(t, []string{"job-1", "job-2"}, f.completions)
}

func TestHardStopReleasesTheJob(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	eng := gatedEngine{started: make(chan struct{}), gate: make(chan struct{})}
	a, cancel, stopped := serve(t, f, eng)
	<-eng.started
	a.Drain()
	cancel() // second SIGTERM
	waitRun(t, stopped)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotNil(t, f.released, "the job goes back to core at once")
	require.Equal(t, int64(7), f.released.GetEpoch())
	require.Nil(t, f.failed, "a release is not a failure")
	require.Nil(t, f.completed)
}

func TestDrainEndsAnIdlePollAtOnce(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	f.assignment = nil // nothing to do: the agent sits in a long-poll
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewWorkerServiceHandler(f))
	core := httptest.NewServer(mux)
	defer core.Close()
	a := newAgent(Config{CoreURL: core.URL, NodeToken: "t", NodeID: "n1", WorkDir: t.TempDir(), PollTimeout: time.Hour}, failingEngine{})
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(context.Background()) }()
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.acquires == 1 }, 10*time.Second, 10*time.Millisecond)
	a.Drain()
	waitRun(t, stopped)
}

func TestOpenEngineBreakerHandsJobsBack(t *testing.T) {
	t.Parallel()
	f := newFakeCore(assignment("sense_and_sensibility_01_austen_64kb-0880.wav"))
	audio := httptest.NewServer(http.FileServer(http.Dir(librivox)))
	defer audio.Close()
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewWorkerServiceHandler(f))
	core := httptest.NewServer(mux)
	defer core.Close()
	eng := failingEngine{errors.New("CUDA error: out of memory")}
	a := newAgent(Config{CoreURL: core.URL, NodeToken: "t", NodeID: "n1", WorkDir: t.TempDir()}, eng)
	for !a.breaker.Open() {
		_ = a.breaker.Do(func() error { return eng.err }) // the engine failed on earlier jobs
	}
	asg := f.assignment
	asg.AudioUrl = audio.URL + "/" + asg.AudioUrl
	a.runJob(context.Background(), a.start(context.Background(), asg, false))
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotNil(t, f.released, "another node should run it")
	require.Nil(t, f.failed, "the job is not at fault")
}
