package api

import (
	"context"
	"errors"
	"fmt"
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
	nodes    *nodeBook // what this replica last wrote of each gpu-node's registry row
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
	node, caps, draining, err := s.polled(ctx, req.Msg)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
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
		a, err := s.claim(ctx, node, caps, grace)
		if err != nil {
			return nil, toConnectError(ctx, s.log, err)
		}
		if a != nil {
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

// polled checks a request for work (AcquireJob's, or CompleteJob's next)
// and books the node in the fleet's registry when that is due (nodeBook),
// saying whether an admin drained it.
func (s *WorkerService) polled(ctx context.Context, m *ytcaptionv1.AcquireJobRequest) (node string, caps []engines.Caps, draining bool, err error) {
	node = m.GetNodeId()
	if node == "" {
		return "", nil, false, job.Errorf(job.CodeInvalidArgument, "node_id is required")
	}
	if n := max(len(m.GetCapabilities()), len(m.GetEngines())); n > maxEnginesPerNode {
		// Each engine is a clause of the claim's SQL: a node must not make
		// core build (and cache) a statement of any size it likes.
		return "", nil, false, job.Errorf(job.CodeInvalidArgument, "%d engines advertised; at most %d", n, maxEnginesPerNode)
	}
	caps = advertised(m)
	// The slot count is part of what the node advertises (a change is
	// written at once); how many are busy rides along when a write is due,
	// so the fleet view's busy slots are at most a write interval old.
	ad := advert(caps, fmt.Sprintf("%s\x00%d", m.GetVersion(), m.GetSlots()))
	if !s.nodes.touchDue(node, ad) {
		return node, caps, false, nil
	}
	// The fleet view's registry and what creation checks jobs against; a
	// node that cannot be recorded still works (and is tried again next poll).
	draining, err = s.store.TouchAgent(ctx, node, caps, m.GetVersion(), store.Slots{Total: int(m.GetSlots()), Busy: int(m.GetSlotsBusy())})
	if err != nil {
		s.log.WarnContext(ctx, "record gpu-node", "node_id", node, "err", err)
		return node, caps, false, nil
	}
	s.nodes.touched(node, ad, draining)
	return node, caps, draining, nil
}

// claim tries once to take a ready job for node and make it an assignment;
// nil when none is ready.
func (s *WorkerService) claim(ctx context.Context, node string, caps []engines.Caps, grace time.Duration) (*ytcaptionv1.Assignment, error) {
	j, ok, err := s.store.ClaimReady(ctx, node, caps, s.lease, grace)
	if err != nil || !ok {
		return nil, err
	}
	return s.hand(ctx, node, j)
}

// hand makes the job node claimed its assignment.
func (s *WorkerService) hand(ctx context.Context, node string, j job.Job) (*ytcaptionv1.Assignment, error) {
	if ctx.Err() != nil {
		// The node gave up on the call (it is draining) while the claim ran:
		// the reply would be lost, so hand the job straight back.
		bg := context.WithoutCancel(ctx)
		if _, err := s.store.Release(bg, j.ID, j.Epoch, 0); err != nil {
			s.log.WarnContext(ctx, "hand back an undeliverable claim", "job_id", j.ID, "err", err)
		}
		return nil, ctx.Err()
	}
	a, err := s.assignment(ctx, j)
	if err != nil {
		return nil, err
	}
	if s.metrics.stages != nil && !j.ReadyAt.IsZero() {
		s.metrics.stages.WithLabelValues("wait").Observe(j.TranscribingAt.Sub(j.ReadyAt).Seconds())
	}
	s.log.InfoContext(ctx, "job acquired", "job_id", j.ID, "node_id", node, "epoch", j.Epoch)
	return a, nil
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
	if node := req.Msg.GetNodeId(); node != "" && s.nodes.seenDue(node) {
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

// CompleteJob finishes the holder's transcription and, when the request
// asks for it (next), hands the node its next job in the same call
// (complete-and-next): one claim once the completion has committed, without
// waiting for work, so a busy fleet spends one call per job instead of two.
func (s *WorkerService) CompleteJob(ctx context.Context, req *connect.Request[ytcaptionv1.CompleteJobRequest]) (*connect.Response[ytcaptionv1.CompleteJobResponse], error) {
	m := req.Msg
	if g := m.GetGuards(); g.GetSilenceDropped() > 0 || g.GetRepetitionDropped() > 0 || g.GetRepetitionTrimmed() > 0 {
		err := s.store.RecordGuards(ctx, m.GetJobId(), m.GetEpoch(), job.GuardCounts{SilenceDropped: int(max(0, g.GetSilenceDropped())),
			RepetitionDropped: int(max(0, g.GetRepetitionDropped())), RepetitionTrimmed: int(max(0, g.GetRepetitionTrimmed()))})
		if err != nil {
			return nil, s.refuse(ctx, err)
		}
	}
	var c store.Completion
	var next *ytcaptionv1.Assignment
	var err error
	if m.GetNext() != nil {
		c, next, err = s.completeAndNext(ctx, m)
	} else {
		c, err = s.store.CompleteAttempt(ctx, m.GetJobId(), m.GetEpoch(), m.GetDetectedLanguage(), int(m.GetSegmentCount()))
	}
	if err != nil {
		return nil, s.refuse(ctx, err)
	}
	if c.Done {
		s.metrics.succeeded.Inc()
		if s.metrics.stages != nil {
			s.metrics.stages.WithLabelValues("transcribe").Observe(c.Took.Seconds())
		}
		// A chunk of long audio: its parent progresses, or is stitched. If
		// this fails, the rescuer stitches it later.
		if c.ParentID != "" {
			if _, err := s.store.Stitch(ctx, c.ParentID); err != nil {
				s.log.WarnContext(ctx, "stitch chunks", "job_id", m.GetJobId(), "err", err)
			}
		}
	}
	s.log.InfoContext(ctx, "job succeeded", "job_id", m.GetJobId(), "epoch", m.GetEpoch())
	return connect.NewResponse(&ytcaptionv1.CompleteJobResponse{Next: next}), nil
}

// completeAndNext is complete-and-next: the completion and AcquireJob's
// claim, tried once, in one transaction (store.CompleteAndClaimReady). The
// completion stands whatever happens to the claim: a failure to hand out the
// next job is no failure of the call, the node long-polls instead. A drained
// node gets nothing.
func (s *WorkerService) completeAndNext(ctx context.Context, m *ytcaptionv1.CompleteJobRequest) (store.Completion, *ytcaptionv1.Assignment, error) {
	id, epoch, lang, n := m.GetJobId(), m.GetEpoch(), m.GetDetectedLanguage(), int(m.GetSegmentCount())
	node, caps, draining, err := s.polled(ctx, m.GetNext())
	if err != nil || draining {
		c, err := s.store.CompleteAttempt(ctx, id, epoch, lang, n)
		return c, nil, err
	}
	var grace time.Duration
	if m.GetNext().GetPrefetch() {
		grace = prefetchGrace
	}
	c, j, ok, err := s.store.CompleteAndClaimReady(ctx, id, epoch, lang, n, node, caps, s.lease, grace)
	if err != nil || !ok {
		return c, nil, err
	}
	a, err := s.hand(ctx, node, j)
	if err != nil {
		s.log.WarnContext(ctx, "hand out the next job", "node_id", node, "err", err)
	}
	return c, a, nil
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
