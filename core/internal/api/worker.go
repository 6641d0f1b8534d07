package api

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/backoff"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// WorkerService implements ytcaptionv1connect.WorkerServiceHandler.
type WorkerService struct {
	log        *slog.Logger
	store      *store.Store
	blobs      blob.Store
	bus        *dispatch.Bus
	metrics    *metrics
	lease      time.Duration
	heartbeat  time.Duration
	pollEvery  time.Duration // fallback when a wake-up was missed (another replica made the job ready)
	presignTTL time.Duration
	instance   string // this core replica
	// stopping is closed when core starts shutting down, so held polls return at once.
	stopping <-chan struct{}
}

// refuse maps a worker call's error, counting refusals of stale epochs.
func (s *WorkerService) refuse(ctx context.Context, err error) error {
	if errors.Is(err, job.ErrLeaseLost) {
		s.metrics.staleRefused.Inc()
	}
	return toConnectError(ctx, s.log, err)
}

// prefetchGrace is how long a ready job is left to idle nodes before a busy
// node prefetching its next job may take it. Idle nodes are woken within
// milliseconds, so this only matters when every node is busy.
const prefetchGrace = 250 * time.Millisecond

// pollWindow is how long a long-poll may wait: until shortly before the
// client's deadline, so the empty answer reaches it before it gives up.
func pollWindow(ctx context.Context, max time.Duration) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return max
	}
	return min(max, time.Until(d)-time.Second)
}

func (s *WorkerService) AcquireJob(ctx context.Context, req *connect.Request[ytcaptionv1.AcquireJobRequest]) (*connect.Response[ytcaptionv1.AcquireJobResponse], error) {
	node := req.Msg.GetNodeId()
	if node == "" {
		return nil, toConnectError(ctx, s.log, job.Errorf(job.CodeInvalidArgument, "node_id is required"))
	}
	if n := max(len(req.Msg.GetCapabilities()), len(req.Msg.GetEngines())); n > maxEnginesPerNode {
		// Each engine is a clause of the claim's SQL: a node must not make
		// core build (and cache) a statement of any size it likes.
		return nil, toConnectError(ctx, s.log, job.Errorf(job.CodeInvalidArgument, "%d engines advertised; at most %d", n, maxEnginesPerNode))
	}
	caps := advertised(req.Msg)
	// The fleet view's registry and what creation checks jobs against; a
	// node that cannot be recorded still works.
	draining, err := s.store.TouchAgent(ctx, node, caps, req.Msg.GetVersion())
	if err != nil {
		s.log.WarnContext(ctx, "record gpu-node", "node_id", node, "err", err)
	}
	window := time.NewTimer(max(0, pollWindow(ctx, 30*time.Second)))
	defer window.Stop()
	if draining {
		// An admin drained the node: it gets no new job and keeps polling
		// slowly, finishing what it holds, until it is stopped.
		select {
		case <-window.C:
		case <-s.stopping:
		case <-ctx.Done():
			return nil, toConnectError(ctx, s.log, ctx.Err())
		}
		return connect.NewResponse(&ytcaptionv1.AcquireJobResponse{}), nil
	}
	var grace time.Duration
	if req.Msg.GetPrefetch() {
		grace = prefetchGrace
	}
	fallback := time.NewTicker(s.pollEvery)
	defer fallback.Stop()
	for {
		// Take the wake-up channel before looking, so a job made ready between the
		// look and the wait still wakes us.
		woken := s.bus.Ready.Wait()
		j, ok, err := s.store.ClaimReady(ctx, node, caps, s.lease, grace)
		if err != nil {
			return nil, toConnectError(ctx, s.log, err)
		}
		if ok {
			if ctx.Err() != nil {
				// The node gave up on the poll (it is draining) while the claim ran:
				// the reply would be lost, so hand the job straight back.
				bg := context.WithoutCancel(ctx)
				if _, err := s.store.Release(bg, j.ID, j.Epoch, 0); err != nil {
					s.log.WarnContext(ctx, "hand back an undeliverable claim", "job_id", j.ID, "err", err)
				}
				return nil, toConnectError(ctx, s.log, ctx.Err())
			}
			a, err := s.assignment(ctx, j)
			if err != nil {
				return nil, toConnectError(ctx, s.log, err)
			}
			if s.metrics.stages != nil && !j.ReadyAt.IsZero() {
				s.metrics.stages.WithLabelValues("wait").Observe(j.TranscribingAt.Sub(j.ReadyAt).Seconds())
			}
			s.log.InfoContext(ctx, "job acquired", "job_id", j.ID, "node_id", node, "epoch", j.Epoch)
			return connect.NewResponse(&ytcaptionv1.AcquireJobResponse{Assignment: a}), nil
		}
		select {
		case <-woken:
			if grace > 0 {
				// Give idle nodes the grace period to take the new job first.
				backoff.Sleep(ctx, grace)
			}
		case <-fallback.C:
		case <-window.C:
			return connect.NewResponse(&ytcaptionv1.AcquireJobResponse{}), nil
		case <-s.stopping:
			return connect.NewResponse(&ytcaptionv1.AcquireJobResponse{}), nil
		case <-ctx.Done():
			return nil, toConnectError(ctx, s.log, ctx.Err())
		}
	}
}

// advertised is what the node's engines can do, as it says: core routes by
// this and knows no engine itself. A node of the previous version names its
// engines and models only; each of its engines is taken to transcribe any
// language without a prompt, the least every engine does (the node fails a
// language it does not know as unsupported), until it is upgraded.
// maxEnginesPerNode bounds what one poll may advertise; a gpu-node runs one
// engine, and the adapters number three.
const maxEnginesPerNode = 16

func advertised(m *ytcaptionv1.AcquireJobRequest) []engines.Caps {
	var caps []engines.Caps
	for _, c := range m.GetCapabilities() {
		caps = append(caps, engines.Caps{Name: c.GetName(), Models: c.GetModels(), Languages: c.GetLanguages(), Translate: c.GetTranslate(), Prompt: c.GetPrompt(),
			Speakers: c.GetSpeakers()})
	}
	if len(m.GetCapabilities()) > 0 {
		return caps
	}
	for _, name := range m.GetEngines() {
		caps = append(caps, engines.Caps{Name: name, Models: m.GetModels()})
	}
	return caps
}

// assignment presigns the job's audio. When that fails the claim is handed
// back as a retryable failure, so the job is not stranded until its lease ends.
func (s *WorkerService) assignment(ctx context.Context, j job.Job) (*ytcaptionv1.Assignment, error) {
	audioURL, err := s.blobs.PresignGet(ctx, j.AudioKey, s.presignTTL)
	if err != nil {
		_, ferr := s.store.Fail(context.WithoutCancel(ctx), j.ID, j.Epoch, &job.Error{
			Code: job.CodeUnavailable, Message: "the audio could not be presigned", Retryable: true, Err: err,
		})
		return nil, errors.Join(err, ferr)
	}
	return &ytcaptionv1.Assignment{
		JobId:             j.ID,
		Epoch:             j.Epoch,
		AudioUrl:          audioURL,
		Language:          j.Language,
		Engine:            j.Engine,
		Model:             j.Model,
		Task:              j.Task,
		Prompt:            j.Prompt,
		DurationSeconds:   j.MediaDuration.Seconds(),
		LeaseExpiresAt:    timestamppb.New(j.LeaseExpiresAt),
		HeartbeatInterval: durationpb.New(s.heartbeat),
		TraceParent:       j.TraceParent,
		Speakers:          j.Speakers,
		MinSpeakers:       int32(j.MinSpeakers),
		MaxSpeakers:       int32(j.MaxSpeakers),
		Vocabulary:        j.Vocabulary,
		SilenceGuard:      j.Guards.Silence,
		RepetitionGuard:   j.Guards.Repetition,
	}, nil
}

// Heartbeat extends the lease, then holds the reply for up to one heartbeat
// interval: a cancel arriving meanwhile answers at once, so the engine stops in
// well under a second instead of at the next beat.
func (s *WorkerService) Heartbeat(ctx context.Context, req *connect.Request[ytcaptionv1.HeartbeatRequest]) (*connect.Response[ytcaptionv1.HeartbeatResponse], error) {
	id, epoch := req.Msg.GetJobId(), req.Msg.GetEpoch()
	cancelled, release := s.bus.Cancels.Wait(id)
	defer release()
	l, err := s.store.ExtendLease(ctx, id, epoch, s.lease, req.Msg.GetProgress())
	if err != nil {
		return nil, s.refuse(ctx, err)
	}
	if node := req.Msg.GetNodeId(); node != "" {
		if err := s.store.SeenAgent(ctx, node); err != nil {
			s.log.WarnContext(ctx, "record gpu-node heartbeat", "node_id", node, "err", err)
		}
	}
	resp := &ytcaptionv1.HeartbeatResponse{
		LeaseExpiresAt:    timestamppb.New(l.ExpiresAt),
		Cancel:            l.Cancel,
		HeartbeatInterval: durationpb.New(s.heartbeat),
	}
	if !l.Cancel {
		hold := time.NewTimer(max(0, pollWindow(ctx, s.heartbeat)))
		defer hold.Stop()
		select {
		case <-cancelled:
			resp.Cancel = true
		case <-hold.C:
		case <-s.stopping:
		case <-ctx.Done():
		}
	}
	return connect.NewResponse(resp), nil
}

func (s *WorkerService) PushSegments(ctx context.Context, req *connect.Request[ytcaptionv1.PushSegmentsRequest]) (*connect.Response[ytcaptionv1.PushSegmentsResponse], error) {
	segs := make([]job.Segment, 0, len(req.Msg.GetSegments()))
	for _, p := range req.Msg.GetSegments() {
		segs = append(segs, segmentFromProto(p))
	}
	cancel, err := s.store.PutSegments(ctx, req.Msg.GetJobId(), req.Msg.GetEpoch(), segs, req.Msg.GetProgress())
	if err != nil {
		return nil, s.refuse(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.PushSegmentsResponse{Cancel: cancel}), nil
}

// Ping implements WorkerService.Ping: reaching here, the node's token passed.
func (s *WorkerService) Ping(ctx context.Context, req *connect.Request[ytcaptionv1.PingRequest]) (*connect.Response[ytcaptionv1.PingResponse], error) {
	s.log.InfoContext(ctx, "gpu-node ping", "node_id", req.Msg.GetNodeId())
	return connect.NewResponse(&ytcaptionv1.PingResponse{Instance: s.instance}), nil
}

func (s *WorkerService) CompleteJob(ctx context.Context, req *connect.Request[ytcaptionv1.CompleteJobRequest]) (*connect.Response[ytcaptionv1.CompleteJobResponse], error) {
	m := req.Msg
	if g := m.GetGuards(); g.GetSilenceDropped() > 0 || g.GetRepetitionDropped() > 0 || g.GetRepetitionTrimmed() > 0 {
		err := s.store.RecordGuards(ctx, m.GetJobId(), m.GetEpoch(), job.GuardCounts{SilenceDropped: int(max(0, g.GetSilenceDropped())),
			RepetitionDropped: int(max(0, g.GetRepetitionDropped())), RepetitionTrimmed: int(max(0, g.GetRepetitionTrimmed()))})
		if err != nil {
			return nil, s.refuse(ctx, err)
		}
	}
	done, err := s.store.Complete(ctx, m.GetJobId(), m.GetEpoch(), m.GetDetectedLanguage(), int(m.GetSegmentCount()))
	if err != nil {
		return nil, s.refuse(ctx, err)
	}
	if done {
		s.metrics.succeeded.Inc()
		if j, err := s.store.GetJob(ctx, "", m.GetJobId()); err == nil && s.metrics.stages != nil {
			s.metrics.stages.WithLabelValues("transcribe").Observe(j.FinishedAt.Sub(j.TranscribingAt).Seconds())
		}
		// A chunk of long audio: its parent progresses, or is stitched. If
		// this fails, the rescuer stitches it later.
		if _, _, err := s.store.FinishParent(ctx, m.GetJobId()); err != nil {
			s.log.WarnContext(ctx, "stitch chunks", "job_id", m.GetJobId(), "err", err)
		}
	}
	s.log.InfoContext(ctx, "job succeeded", "job_id", m.GetJobId(), "epoch", m.GetEpoch())
	return connect.NewResponse(&ytcaptionv1.CompleteJobResponse{}), nil
}

func (s *WorkerService) FailJob(ctx context.Context, req *connect.Request[ytcaptionv1.FailJobRequest]) (*connect.Response[ytcaptionv1.FailJobResponse], error) {
	m := req.Msg
	code := m.GetError().GetCode()
	if code == "" {
		code = job.CodeEngineFailed
	}
	if !errcode.IsJobFailure(code) {
		// A code clients cannot look up would reach them on the job: the
		// gpu-node is out of step with the contract (package errcode).
		return nil, s.refuse(ctx, job.Errorf(job.CodeInvalidArgument, "%q is not a job failure code", code))
	}
	st, err := s.store.Fail(ctx, m.GetJobId(), m.GetEpoch(), &job.Error{Code: code, Message: m.GetError().GetMessage(), Retryable: m.GetRetryable()})
	if err != nil {
		return nil, s.refuse(ctx, err)
	}
	s.log.InfoContext(ctx, "job attempt failed", "job_id", m.GetJobId(), "epoch", m.GetEpoch(), "code", code, "status", string(st))
	return connect.NewResponse(&ytcaptionv1.FailJobResponse{}), nil
}

// maxReleaseDelay bounds the pause a node may ask for when it hands a job
// back: a node cannot park a job for long.
const maxReleaseDelay = 5 * time.Minute

func (s *WorkerService) ReleaseJob(ctx context.Context, req *connect.Request[ytcaptionv1.ReleaseJobRequest]) (*connect.Response[ytcaptionv1.ReleaseJobResponse], error) {
	after := min(max(time.Duration(req.Msg.GetRetryAfterMs())*time.Millisecond, 0), maxReleaseDelay)
	st, err := s.store.Release(ctx, req.Msg.GetJobId(), req.Msg.GetEpoch(), after)
	if err != nil {
		return nil, s.refuse(ctx, err)
	}
	s.log.InfoContext(ctx, "job released", "job_id", req.Msg.GetJobId(), "epoch", req.Msg.GetEpoch(), "status", string(st), "retry_in", after)
	return connect.NewResponse(&ytcaptionv1.ReleaseJobResponse{}), nil
}
