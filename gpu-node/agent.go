// Package agent is the gpu-node: it pulls jobs from core over Connect
// (AcquireJob long-poll), fetches the audio by presigned URL — the next job's
// while the engine is still on the current one (prefetch) — runs a speech
// engine, sends segments back in batches as they are decoded (push.go: off
// the engine's goroutine), heartbeats to keep each job's lease, and completes
// or fails the job; while work is queued, the completion also asks for the
// next job (relay.go: one call to core a job). With --slots N it does all of
// that for up to N jobs at once, each slot with its own poll, prefetch,
// lease, heartbeat and cancellation: an engine whose server batches (vLLM, a
// batched faster-whisper) serves many requests in about the time of one. Each poll
// advertises what the engine can do (engine.Capabilities): core knows no
// engine itself and hands the node only jobs its engine serves. Every call
// carries the lease epoch; a stale epoch means another node owns the job now,
// and this one lets go.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/backoff"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/discovery"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// Engine settings, re-exported so that callers outside gpu-node can set them.
type (
	SphinxConfig     = engine.SphinxConfig
	OpenAIConfig     = engine.OpenAIConfig
	WhisperCPPConfig = engine.WhisperCPPConfig
)

// EngineConfig is the engine part of c.
func (c Config) EngineConfig() engine.Config {
	return engine.Config{Name: c.Engine, Sphinx: c.Sphinx, OpenAI: c.OpenAI, WhisperCPP: c.WhisperCPP}
}

// Engines lists the engine names Config.Engine accepts.
var Engines = engine.Names

// Config configures an agent.
type Config struct {
	CoreURL   string // core's Connect base URL
	NodeToken string
	NodeID    string // default: the host name
	Version   string
	WorkDir   string // audio files; default os.TempDir()
	Engine    string // "sphinx" (default), "openai" or "whispercpp"
	// ConsulAddr is the local Consul agent; with it the node finds healthy
	// core instances, CoreURL's host serving while Consul knows none.
	ConsulAddr string
	Sphinx     SphinxConfig
	OpenAI     OpenAIConfig
	WhisperCPP WhisperCPPConfig
	// PollTimeout bounds one AcquireJob long-poll; core answers empty about a
	// second before it. Default 30 s.
	PollTimeout time.Duration
	// Slots is how many jobs the node transcribes at once, 1..MaxSlots
	// (default 1): more than one pays only for an engine that serves
	// requests side by side, such as an OpenAI-compatible server that batches.
	Slots int
	// Metrics receives the agent's metrics (the engine's circuit breaker);
	// nil leaves them unexported.
	Metrics prometheus.Registerer
	// TracerProvider records the node's spans: a span per job, joined to the
	// trace of the request that created the job. nil: none.
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger

	// now is the clock of the busy and idle meters and the real-time factor;
	// nil: time.Now. Tests stub it to know what the meters must say.
	now func() time.Time
	// pushInterval spaces one job's segment pushes; 0: pushInterval.
	pushInterval time.Duration
}

// MaxSlots bounds --slots: each slot holds a long-poll, a heartbeat and up to
// two jobs' audio, and no batching server we know gains past a few dozen.
const MaxSlots = 64

// Agent is a running gpu-node.
type Agent struct {
	resolver  *discovery.Resolver // nil: core at CoreURL
	draining  chan struct{}       // closed by Drain
	drainOnce sync.Once

	cfg    Config
	log    *slog.Logger
	eng    engine.Engine
	core   ytcaptionv1connect.WorkerServiceClient
	http   *http.Client // audio downloads
	engine string
	// breaker stops the node taking jobs while its engine keeps failing; the
	// jobs go to healthier nodes meanwhile.
	breaker      *breaker.Breaker
	pushInterval time.Duration

	// For busy/idle seconds: the engine is busy while any slot runs a job.
	// meter guards running (jobs in the engine now), since (when running
	// last rose from 0) and busyTime (finished busy spells).
	now       func() time.Time
	startedAt time.Time
	meter     sync.Mutex
	running   int
	since     time.Time
	busyTime  time.Duration

	rtf           prometheus.Histogram
	guardSegments *prometheus.CounterVec // what the hallucination guards removed
}

// New checks cfg and builds the engine.
func New(cfg Config) (*Agent, error) {
	if cfg.CoreURL == "" || cfg.NodeToken == "" {
		return nil, errors.New("agent: a core URL and a node token are required")
	}
	if cfg.NodeID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent: node id: %w", err)
		}
		cfg.NodeID = host
	}
	// The node keeps its audio in a directory of its own under the work
	// directory. Whatever is there at start was left by a previous life
	// killed mid-job (found by the chaos suite), so it goes; and a work
	// directory that is not there would fail every job, so it is made, or
	// the node refuses to start.
	if cfg.WorkDir == "" {
		cfg.WorkDir = os.TempDir()
	}
	cfg.WorkDir = filepath.Join(cfg.WorkDir, "ytcaption-gpu-node-"+fileSafe(cfg.NodeID))
	if err := os.RemoveAll(cfg.WorkDir); err != nil {
		return nil, fmt.Errorf("agent: clear work directory: %w", err)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: work directory: %w", err)
	}
	eng, err := engine.New(cfg.EngineConfig())
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.Slots < 0 || cfg.Slots > MaxSlots {
		return nil, fmt.Errorf("agent: %d slots: between 1 and %d", cfg.Slots, MaxSlots)
	}
	a := newAgent(cfg, eng)
	if cfg.ConsulAddr != "" {
		if a.resolver, err = discovery.CoreResolver(a.log, cfg.ConsulAddr, cfg.CoreURL); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		a.core = workerClient(a.cfg, &discovery.Transport{Base: coreTransport(a.cfg.Slots), Resolver: a.resolver})
	}
	return a, nil
}

// Ping checks that core answers and accepts the node's token; it returns the
// core replica that answered.
func (a *Agent) Ping(ctx context.Context) (string, error) {
	if a.resolver != nil {
		go a.resolver.Run(ctx)
	}
	resp, err := a.core.Ping(ctx, connect.NewRequest(&ytcaptionv1.PingRequest{NodeId: a.cfg.NodeID}))
	if err != nil {
		return "", err
	}
	return resp.Msg.GetInstance(), nil
}

// workerClient calls core's WorkerService through base with the node token.
func workerClient(cfg Config, base http.RoundTripper) ytcaptionv1connect.WorkerServiceClient {
	return ytcaptionv1connect.NewWorkerServiceClient(&http.Client{Transport: &svcauth.Transport{Base: base, Token: cfg.NodeToken}}, cfg.CoreURL,
		connect.WithInterceptors(tracing.Interceptor(cfg.TracerProvider)))
}

// coreTransport keeps enough idle connections to core for every slot's
// poll, heartbeat and pushes: the default two per host would close and
// reopen connections under a busy node's feet.
func coreTransport(slots int) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 4 + 3*slots
	return t
}

func newAgent(cfg Config, eng engine.Engine) *Agent {
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	cfg.Slots = min(cfg.Slots, MaxSlots)
	if cfg.pushInterval <= 0 {
		cfg.pushInterval = pushInterval
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = os.TempDir()
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	a := &Agent{
		now: cfg.now, startedAt: cfg.now(),
		rtf: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ytcaption_gpu_node_realtime_factor",
			Help:    "Engine time over audio time, per finished job: below 1 is faster than real time.",
			Buckets: []float64{.01, .02, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 5},
		}),
		guardSegments: guardMetric(),
		draining:      make(chan struct{}),
		cfg:           cfg, log: cfg.Logger.With("node_id", cfg.NodeID), eng: eng, engine: eng.Name(),
		core: workerClient(cfg, coreTransport(cfg.Slots)), pushInterval: cfg.pushInterval,
		http: &http.Client{Timeout: 10 * time.Minute},
		breaker: breaker.New(cfg.Metrics, "engine", breaker.Config{Counts: func(err error) bool {
			// Only the engine's own failures: not a job it cannot do, nor a stop we asked for.
			return !errors.Is(err, engine.ErrUnsupported) && !errors.Is(err, errCancelled) &&
				!errors.Is(err, errLeaseLost) && !errors.Is(err, errLeaseExpired)
		}}),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(a.rtf, a.guardSegments,
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "ytcaption_gpu_node_busy_seconds_total", Help: "Seconds the engine spent transcribing.",
			}, func() float64 { return a.busySeconds() }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "ytcaption_gpu_node_idle_seconds_total", Help: "Seconds the engine waited for work since the node started.",
			}, func() float64 { return a.now().Sub(a.startedAt).Seconds() - a.busySeconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "ytcaption_gpu_node_slots", Help: "Jobs the node transcribes at once (--slots).",
			}, func() float64 { return float64(a.cfg.Slots) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "ytcaption_gpu_node_slots_busy", Help: "Slots with a job in the engine now.",
			}, func() float64 { return float64(a.slotsBusy()) }))
	}
	return a
}

// busySeconds is the time the engine had at least one job, the spell in
// progress included: with several slots, jobs side by side count once.
func (a *Agent) busySeconds() float64 {
	a.meter.Lock()
	defer a.meter.Unlock()
	busy := a.busyTime
	if a.running > 0 {
		busy += a.now().Sub(a.since)
	}
	return busy.Seconds()
}

// slotsBusy is how many jobs are in the engine now.
func (a *Agent) slotsBusy() int {
	a.meter.Lock()
	defer a.meter.Unlock()
	return a.running
}

// engineStarted and engineDone keep the meters: called around each run.
func (a *Agent) engineStarted() time.Time {
	a.meter.Lock()
	defer a.meter.Unlock()
	now := a.now()
	if a.running == 0 {
		a.since = now
	}
	a.running++
	return now
}

func (a *Agent) engineDone() time.Time {
	a.meter.Lock()
	defer a.meter.Unlock()
	now := a.now()
	if a.running--; a.running == 0 {
		a.busyTime += now.Sub(a.since)
	}
	return now
}

// Drain stops acquiring jobs: Run returns once the jobs in hand are finished.
// It is safe to call more than once.
func (a *Agent) Drain() {
	a.drainOnce.Do(func() { close(a.draining) })
}

func (a *Agent) isDraining() bool {
	select {
	case <-a.draining:
		return true
	default:
		return false
	}
}

// Run acquires and runs jobs until ctx ends or Drain is called. When ctx ends
// mid-job the jobs in hand are released to core, which requeues them at once
// for other nodes. Run returns an error only when core refuses the node for
// good (bad token, incompatible API).
//
// Each of the node's slots runs on its own (runSlot): slots share only the
// engine, its circuit breaker and the meters.
func (a *Agent) Run(ctx context.Context) error {
	a.log.InfoContext(ctx, "gpu-node started", "engine", a.engine, "core", a.cfg.CoreURL, "consul", a.cfg.ConsulAddr, "slots", a.cfg.Slots)
	if a.resolver != nil {
		go a.resolver.Run(ctx)
	}
	// A refusal for good ends every slot: the others would only hear it too.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var once sync.Once
	var refused error
	for range a.cfg.Slots {
		wg.Go(func() {
			if err := a.runSlot(ctx); err != nil {
				once.Do(func() { refused = err; stop() })
			}
		})
	}
	wg.Wait()
	a.log.InfoContext(ctx, "gpu-node stopped", "drained", a.isDraining())
	return refused
}

// slot is one of the node's slots: busy counts its jobs handed to the engine
// and not finished, so that its polls meanwhile are prefetches; relay lets
// its polls ride on its completions.
type slot struct {
	busy  atomic.Int32
	relay relay
}

// runSlot is one slot. Two loops share its work: the acquirer takes a job
// and downloads its audio while the engine loop transcribes the previous one
// (prefetch), so the engine starts the next job without waiting on the
// network. The hand-off channel is unbuffered: a slot holds at most one job
// beyond the one it transcribes.
func (a *Agent) runSlot(ctx context.Context) error {
	s := &slot{}
	tasks := make(chan *task)
	acquired := make(chan error, 1)
	go func() {
		defer close(tasks)
		acquired <- a.acquire(ctx, s, tasks)
	}()
	// A finished job's last segments and its completion go to core while the
	// engine starts the next job: two round trips to core less between jobs.
	// The slot counts as busy until they are done, so that its polls
	// meanwhile prefetch rather than take a second job for the engine.
	var reporting sync.WaitGroup
	for t := range tasks {
		report := a.transcribe(ctx, t)
		// Before the next hand-off: the acquirer then offers its poll to
		// this report (relay).
		s.relay.expect()
		t.carry = s.relay.take
		reporting.Go(func() {
			defer s.busy.Add(-1)
			report()
		})
	}
	reporting.Wait()
	return <-acquired
}

// acquire long-polls core for jobs for slot s, starts each one's heartbeat,
// downloads its audio and hands it to the slot's engine loop.
func (a *Agent) acquire(ctx context.Context, s *slot, tasks chan<- *task) error {
	var failures int
	for ctx.Err() == nil && !a.isDraining() {
		if a.breaker.Open() {
			backoff.Sleep(ctx, time.Second) // take no work the engine would fail
			continue
		}
		caps := a.capabilities() // each poll: a models directory may have changed
		pctx, cancel := context.WithTimeout(ctx, a.cfg.PollTimeout)
		go func() {
			select {
			case <-a.draining:
				cancel() // a held poll ends at once; an assignment already sent still runs
			case <-pctx.Done():
			}
		}()
		prefetch := s.busy.Load() > 0 // this slot's: an idle slot polls as idle, whatever the others do
		asg, err := a.poll(ctx, pctx, s, &ytcaptionv1.AcquireJobRequest{
			NodeId: a.cfg.NodeID, Version: a.cfg.Version, Prefetch: prefetch, Capabilities: []*ytcaptionv1.EngineCapabilities{caps},
			Engines: []string{caps.GetName()}, Models: caps.GetModels(), // for a core of the previous version
			Slots: int32(a.cfg.Slots), SlotsBusy: int32(a.slotsBusy()),
		})
		cancel()
		switch {
		case err == nil && asg != nil:
			failures = 0
			t := a.start(ctx, asg, prefetch)
			t.audioErr = a.download(t.ctx, t.asg.GetAudioUrl(), t.audio)
			s.busy.Add(1) // before the hand-off, so the next poll already prefetches
			select {
			case tasks <- t:
				continue
			case <-t.ctx.Done(): // cancelled or lost while it waited
				a.finish(t, 0, engine.Result{}, context.Cause(t.ctx))
			case <-a.draining: // prefetched, never started: let another node run it now
				a.finish(t, 0, engine.Result{}, errHandBack)
			case <-ctx.Done():
				a.finish(t, 0, engine.Result{}, ctx.Err())
			}
			s.busy.Add(-1)
		case ctx.Err() != nil || a.isDraining():
		case err != nil && permanent(err):
			return fmt.Errorf("acquire job: %w", err)
		case err != nil:
			failures++
			d := retryDelay(failures)
			a.log.WarnContext(ctx, "acquire job", "err", err, "retry_in", d)
			backoff.Sleep(ctx, d)
		default:
			failures = 0
		}
	}
	return nil
}

// poll asks core for slot s's next job: through the completion under way in
// the slot when there is one (relay), else, or when that brought none, by
// AcquireJob's long-poll, which ends with pctx. The wait for the completion
// ends only with the agent's ctx, which also ends the completion's call: an
// acquirer that stopped waiting sooner could leave a job core handed out
// with no one to start its heartbeat.
func (a *Agent) poll(ctx, pctx context.Context, s *slot, req *ytcaptionv1.AcquireJobRequest) (*ytcaptionv1.Assignment, error) {
	if got := s.relay.offer(req); got != nil {
		select {
		case asg := <-got:
			if asg != nil {
				return asg, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	resp, err := a.core.AcquireJob(pctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetAssignment(), nil
}

// Why a job's context ended, besides the agent shutting down.
var (
	errCancelled    = errors.New("the job was cancelled")
	errLeaseLost    = errors.New("the lease is lost: another node owns the job")
	errLeaseExpired = errors.New("no heartbeat succeeded before the lease expired")
	errHandBack     = errors.New("the node hands the job back unstarted")
)

// task is one acquired job. Its heartbeat keeps the lease from the moment it
// is acquired, also while it waits for the engine.
type task struct {
	asg      *ytcaptionv1.Assignment
	filter   *filter // the job's guards and vocabulary, once it runs
	log      *slog.Logger
	traced   context.Context // the agent's context in the job's trace: outlives ctx, for the final report
	span     trace.Span      // the node's work on the job, in the trace of the request that created it
	ctx      context.Context
	cancel   context.CancelCauseFunc
	progress atomic.Uint64 // float64 bits
	hbDone   chan struct{}
	push     *pusher // its segments' way to core, once it runs
	audio    string  // local path of the audio
	audioErr error   // why the audio could not be fetched
	started  time.Time
	took     time.Duration // the engine's time on it
	// carry, for a job its slot's engine ran, takes the slot's offered
	// poll for the job's last call to core (relay.take).
	carry func() *nextPoll
}

// start begins a job's lease keeping.
func (a *Agent) start(ctx context.Context, asg *ytcaptionv1.Assignment, prefetched bool) *task {
	t := &task{
		asg: asg, log: a.log.With("job_id", asg.GetJobId(), "epoch", asg.GetEpoch()), hbDone: make(chan struct{}), started: time.Now(),
		audio: filepath.Join(a.cfg.WorkDir, fmt.Sprintf("audio-%s-%d.wav", fileSafe(asg.GetJobId()), asg.GetEpoch())),
	}
	t.traced, t.span = tracing.Tracer(a.cfg.TracerProvider).Start(tracing.FromTraceParent(ctx, asg.GetTraceParent()), "gpu-node transcribe",
		trace.WithAttributes(attribute.String("job.id", asg.GetJobId()), attribute.String("node.id", a.cfg.NodeID)))
	t.ctx, t.cancel = context.WithCancelCause(t.traced)
	t.log.InfoContext(t.traced, "job acquired", "duration_seconds", asg.GetDurationSeconds(), "prefetched", prefetched)
	go func() {
		defer close(t.hbDone)
		a.heartbeat(t)
	}()
	return t
}

// fileSafe makes a job id (a UUID from core) safe as part of a file name in
// the work directory, whatever core sent: no separator, no dot, bounded.
func fileSafe(id string) string {
	id = strings.Map(func(r rune) rune {
		if r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, id)
	return id[:min(len(id), 64)]
}

// runJob transcribes a task and reports the outcome to core.
func (a *Agent) runJob(ctx context.Context, t *task) {
	a.transcribe(ctx, t)()
}

// transcribe runs the engine on t and returns what is left: sending the last
// segments and telling core how the job ended, network work a slot does in
// the background while its engine starts the next job.
func (a *Agent) transcribe(ctx context.Context, t *task) (report func()) {
	if t.audioErr != nil {
		return func() { a.finish(t, 0, engine.Result{}, t.audioErr) }
	}
	t.log.InfoContext(ctx, "job started", "waited_seconds", time.Since(t.started).Seconds())
	duration := time.Duration(t.asg.GetDurationSeconds() * float64(time.Second))
	seq := 0
	var res engine.Result
	t.filter = a.newFilter(ctx, t)
	t.push = a.newPusher(t)
	started := a.engineStarted()
	err := a.breaker.Do(func() (err error) {
		res, err = a.eng.Transcribe(t.ctx, engine.Request{AudioPath: t.audio, Language: t.asg.GetLanguage(), Model: t.asg.GetModel(), Duration: duration,
			Task: t.asg.GetTask(), Prompt: a.prompt(t.asg), SkipSilence: t.asg.GetSilenceGuard(), Vocabulary: t.asg.GetVocabulary(),
			Speakers: t.asg.GetSpeakers(), MinSpeakers: int(t.asg.GetMinSpeakers()), MaxSpeakers: int(t.asg.GetMaxSpeakers())},
			a.emitter(t, duration, &seq))
		return err
	})
	t.took = a.engineDone().Sub(started) // the real-time factor counts the engine's time, not the waits
	return func() {
		if err == nil {
			// Complete only once core has every segment: the last batch may
			// still be on its way, or waiting out a core restart.
			err = t.push.flush()
		}
		a.finish(t, seq, res, err)
	}
}

// finish stops the task's heartbeat and tells core how the job ended: done,
// failed, handed back, or nothing when core already took it away.
func (a *Agent) finish(t *task, count int, res engine.Result, err error) {
	ctx := t.traced // the agent's context, in the job's trace
	defer t.span.End()
	cause := context.Cause(t.ctx)
	t.cancel(nil)
	<-t.hbDone
	if t.push != nil {
		<-t.push.done
	}
	os.Remove(t.audio)
	log, asg := t.log, t.asg
	var next *nextPoll
	if t.carry != nil {
		next = t.carry()
	}
	// Only a completion carries the poll; every other ending answers it
	// with nothing at once, and the acquirer polls itself.
	defer next.answer(nil)
	switch {
	case errors.Is(cause, errCancelled), errors.Is(cause, errLeaseLost), errors.Is(cause, errLeaseExpired):
		log.InfoContext(ctx, "job dropped", "reason", cause.Error(), "segments", count)
	case ctx.Err() != nil, errors.Is(err, errHandBack):
		// Stopped before the end: hand the job back so another node starts it now.
		a.release(log, asg, 0)
	case err == nil:
		a.complete(ctx, log, asg, count, res.Language, t.filter.report(), t.took, next)
	case errors.Is(err, breaker.ErrOpen):
		log.WarnContext(ctx, "engine circuit open: handing the job back")
		a.release(log, asg, 0)
	case errors.Is(err, errStoreDown), errors.Is(err, errDiskFull):
		// Not the job's fault: the blob store did not answer, or this
		// node's disk is full. Hand it back for a little later without
		// spending one of its attempts (a few seconds of blob-store outage
		// used to fail jobs for good: the chaos suite).
		log.WarnContext(ctx, "handing the job back", "err", err, "retry_in", handBackDelay)
		a.release(log, asg, handBackDelay)
	case errors.Is(err, errAudio):
		a.fail(log, asg, errcode.AudioUnavailable, "the gpu-node could not fetch the audio", true)
	case errors.Is(err, engine.ErrUnsupported):
		a.fail(log, asg, errcode.UnsupportedOption, err.Error(), false)
	default:
		log.WarnContext(ctx, "engine failed", "err", err)
		a.fail(log, asg, errcode.EngineFailed, "the speech engine failed", true)
	}
}

var (
	errAudio = errors.New("audio download failed")
	// errStoreDown: the blob store did not answer the audio's URL, or
	// answered with a server error.
	errStoreDown = errors.New("the blob store is unavailable")
	// errDiskFull: the audio does not fit on this node's disk.
	errDiskFull = errors.New("the work directory is full")
)

// handBackDelay is how long a job handed back for a blob-store or disk
// fault waits before it may be claimed again.
const handBackDelay = 10 * time.Second

// TranscribeFile runs the node's engine on a local 16 kHz mono WAV, with no
// core involved, and returns the transcript's text. The pipeline benchmark
// uses it to time the engine on its own.
func (a *Agent) TranscribeFile(ctx context.Context, path, language string) (string, error) {
	var text []string
	_, err := a.eng.Transcribe(ctx, engine.Request{AudioPath: path, Language: language}, func(s engine.Segment) error {
		text = append(text, s.Text)
		return nil
	})
	return strings.Join(text, " "), err
}

// emitter queues each segment the engine emits that the job's filter keeps,
// numbering them from 0, for the job's pusher: it never waits on core.
func (a *Agent) emitter(t *task, duration time.Duration, seq *int) func(engine.Segment) error {
	return func(s engine.Segment) error {
		p := -1.0
		if duration > 0 {
			p = math.Min(float64(s.EndMS)/float64(duration.Milliseconds()), 0.99)
			t.progress.Store(math.Float64bits(p))
		}
		if t.filter != nil {
			var keep bool
			if s, keep = t.filter.apply(s); !keep {
				return nil
			}
		}
		if err := t.push.add(*seq, s, p); err != nil {
			return err
		}
		*seq++
		return nil
	}
}

func (a *Agent) download(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errAudio, err)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w: %v", errAudio, errStoreDown, redact(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %w: status %d", errAudio, errStoreDown, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%w: status %d", errAudio, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return local(fmt.Errorf("create audio file: %w", err))
	}
	_, err = io.Copy(writerOnly{f}, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var we writeError
	switch {
	case errors.As(err, &we):
		return local(fmt.Errorf("write audio file: %w", we.err))
	case err != nil:
		// The body stopped coming: the store went away mid-way.
		return fmt.Errorf("%w: %w: %v", errAudio, errStoreDown, redact(err))
	}
	return nil
}

// local marks a failure of this node's disk: a full one is errDiskFull.
func local(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", errDiskFull, err)
	}
	return err
}

// writerOnly tells a failed write from a failed read in io.Copy.
type writerOnly struct{ f *os.File }

type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

func (w writerOnly) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, writeError{err}
	}
	return n, nil
}

// redact keeps the presigned URL (a credential) out of error messages.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// heartbeat keeps the lease. Core holds each call for up to the interval and
// answers at once on a cancel, so the next call goes out right after the reply
// (or after what remains of the interval when core answered early). Without a
// successful heartbeat until the lease runs out, the job stops by itself.
func (a *Agent) heartbeat(t *task) {
	ctx, asg, cancel, log := t.ctx, t.asg, t.cancel, t.log
	interval := 10 * time.Second
	if d := asg.GetHeartbeatInterval().AsDuration(); d > 0 {
		interval = d
	}
	expires := asg.GetLeaseExpiresAt().AsTime()
	for ctx.Err() == nil {
		start := time.Now()
		hctx, c := context.WithTimeout(ctx, max(time.Until(expires), 2*time.Second))
		p := -1.0
		if bits := t.progress.Load(); bits != 0 {
			p = math.Float64frombits(bits)
		}
		resp, err := a.core.Heartbeat(hctx, connect.NewRequest(&ytcaptionv1.HeartbeatRequest{
			JobId: asg.GetJobId(), Epoch: asg.GetEpoch(), NodeId: a.cfg.NodeID, Progress: p,
		}))
		c()
		wait := interval - time.Since(start)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && resp.Msg.GetCancel():
			log.InfoContext(ctx, "job cancelled by core")
			cancel(errCancelled)
			return
		case err == nil:
			if resp.Msg.GetDrain() && !a.isDraining() {
				log.InfoContext(ctx, "core asked this node to drain")
				a.Drain()
			}
			expires = resp.Msg.GetLeaseExpiresAt().AsTime()
			if d := resp.Msg.GetHeartbeatInterval().AsDuration(); d > 0 {
				interval = d
			}
		case leaseLost(err):
			cancel(errLeaseLost)
			return
		default:
			log.WarnContext(ctx, "heartbeat", "err", err)
			wait = min(wait, time.Second)
		}
		if !time.Now().Before(expires) {
			log.WarnContext(ctx, "lease expired without a heartbeat: stopping the engine")
			cancel(errLeaseExpired)
			return
		}
		// ±10 % jitter keeps a fleet's heartbeats from lining up.
		wait += time.Duration(float64(wait) * (rand.Float64()*0.2 - 0.1))
		t := time.NewTimer(min(max(wait, 0), time.Until(expires)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// complete tells core the job is done. With next, the first attempt also
// asks for the slot's next job (complete-and-next) and answers next with
// what came: a retry never asks, since an attempt whose answer was lost may
// have claimed a job already (its lease runs out and core hands it out again,
// as after a crash).
func (a *Agent) complete(ctx context.Context, log *slog.Logger, asg *ytcaptionv1.Assignment, count int, lang string, guards *ytcaptionv1.Guards,
	took time.Duration, next *nextPoll) {
	req := &ytcaptionv1.CompleteJobRequest{JobId: asg.GetJobId(), Epoch: asg.GetEpoch(), DetectedLanguage: lang, SegmentCount: int32(count),
		Guards: guards}
	if next != nil && !a.isDraining() {
		req.Next = next.req
	}
	for attempt := 1; attempt <= 8; attempt++ {
		cctx, c := context.WithTimeout(ctx, 30*time.Second)
		resp, err := a.core.CompleteJob(cctx, connect.NewRequest(req))
		c()
		if req.Next != nil {
			var got *ytcaptionv1.Assignment
			if err == nil {
				got = resp.Msg.GetNext()
			}
			next.answer(got)
			req.Next = nil
		}
		switch {
		case err == nil:
			rtf := 0.0
			if d := asg.GetDurationSeconds(); d > 0 {
				rtf = took.Seconds() / d
			}
			if rtf > 0 {
				a.rtf.Observe(rtf)
			}
			log.InfoContext(ctx, "job completed", "segments", count, "seconds", took.Seconds(), "real_time_factor", rtf)
			return
		case leaseLost(err) || permanent(err) || ctx.Err() != nil:
			log.WarnContext(ctx, "complete job refused", "err", err)
			return
		}
		log.WarnContext(ctx, "complete job", "err", err, "attempt", attempt)
		backoff.Sleep(ctx, retryDelay(attempt))
	}
}

// fail reports a failed attempt with a fresh short deadline: it also runs when
// the agent's own context has ended.
func (a *Agent) fail(log *slog.Logger, asg *ytcaptionv1.Assignment, code, msg string, retryable bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.core.FailJob(ctx, connect.NewRequest(&ytcaptionv1.FailJobRequest{
		JobId: asg.GetJobId(), Epoch: asg.GetEpoch(), Error: &ytcaptionv1.JobError{Code: code, Message: msg}, Retryable: retryable,
	}))
	if err != nil {
		log.Warn("fail job", "code", code, "err", err)
		return
	}
	log.Info("job attempt failed", "code", code, "retryable", retryable)
}

// release gives the job back with a fresh short deadline: it runs after the
// agent's own context has ended.
func (a *Agent) release(log *slog.Logger, asg *ytcaptionv1.Assignment, after time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.core.ReleaseJob(ctx, connect.NewRequest(&ytcaptionv1.ReleaseJobRequest{JobId: asg.GetJobId(), Epoch: asg.GetEpoch(),
		RetryAfterMs: after.Milliseconds()})); err != nil {
		log.Warn("release job", "err", err)
		return
	}
	log.Info("job released")
}

func leaseLost(err error) bool { return errcode.OfConnect(err) == errcode.LeaseLost }

// permanent lists the Connect codes that no retry can fix.
func permanent(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeInvalidArgument, connect.CodeUnimplemented:
		return true
	}
	return false
}

// retryDelay spaces retries of calls to core: 200 ms doubling per attempt, at
// most 30 s, full jitter.
func retryDelay(attempt int) time.Duration {
	return backoff.Full(attempt, 200*time.Millisecond, 30*time.Second)
}

// capabilities is what the node's engine says it can do, as core reads it:
// core routes jobs by it and knows no engine itself.
func (a *Agent) capabilities() *ytcaptionv1.EngineCapabilities {
	c := a.eng.Capabilities()
	return &ytcaptionv1.EngineCapabilities{Name: a.engine, Models: c.Models, Languages: c.Languages, Translate: c.Translate, Prompt: c.Prompt,
		Speakers: c.Speakers}
}
