package agent

import (
	"context"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Segments leave the engine through a buffer and go to core in batches, on a
// goroutine of their own (after Buildkite's log streamer): the engine's emit
// only appends to memory, so a slow, restarting or stopped core never holds
// up decoding, and core takes one transaction per batch instead of one per
// segment. We chose unary batches over a client stream: every batch is a
// PushSegments call that is fenced by the epoch and idempotent on (job,
// epoch, seq) like before, so a retry after a lost reply rewrites what core
// already has; a stream would need its own resume protocol after a core
// restart, and client streams over HTTP/1.1 tie up a connection per job.
const (
	// pushInterval is the least time between two pushes of one job, and the
	// longest a segment waits for company before it goes: segments emitted
	// within it travel together, and an engine that emits everything at the
	// end (an OpenAI-compatible server answers once) sends one push.
	pushInterval = 250 * time.Millisecond
	// maxPushBatch bounds one call's size (a segment with words is a few
	// kilobytes): a backlog after an outage goes out in several calls.
	maxPushBatch = 500
	// maxBuffered bounds the segments a job holds unacknowledged. When core
	// is away long enough for this many to pile up, the engine's emit waits
	// for room (the job's lease, kept by its heartbeat, still decides whether
	// the job goes on): memory stays bounded and nothing is dropped. At a
	// segment every few seconds of audio that is hours of transcript, and a
	// core gone longer than a lease (30 s) takes the job away anyway.
	maxBuffered = 10_000
)

// pusher is one job's segment buffer and the goroutine that drains it.
type pusher struct {
	a        *Agent
	t        *task
	interval time.Duration

	mu      sync.Mutex
	pending []pendingSegment // emitted, not yet acknowledged, in seq order
	closed  bool             // the engine finished: flush what remains, then stop
	full    bool             // the cap was hit at least once (logged once)
	pushes  int              // calls made, for tests

	wake  chan struct{} // something to send, or closed
	space chan struct{} // a push made room
	done  chan struct{} // the loop ended; err says why, nil: all acknowledged
	err   error
}

type pendingSegment struct {
	seg      *ytcaptionv1.Segment
	progress float64
	at       time.Time // when the engine emitted it
}

func (a *Agent) newPusher(t *task) *pusher {
	p := &pusher{a: a, t: t, interval: a.pushInterval, wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run()
	return p
}

// add queues one segment for core. It waits only while the buffer is full,
// and returns the job's end cause once the job has ended.
func (p *pusher) add(seq int, s engine.Segment, progress float64) error {
	seg := &ytcaptionv1.Segment{Seq: int32(seq), StartMs: s.StartMS, EndMs: s.EndMS, Text: s.Text, Speaker: s.Speaker}
	for _, w := range s.Words {
		seg.Words = append(seg.Words, &ytcaptionv1.Word{StartMs: w.StartMS, EndMs: w.EndMS, Text: w.Text, Probability: w.Probability, Speaker: w.Speaker})
	}
	ctx := p.t.ctx
	p.mu.Lock()
	for len(p.pending) >= maxBuffered {
		if !p.full {
			p.full = true
			p.t.log.WarnContext(ctx, "segment buffer full: the engine waits for core", "buffered", len(p.pending))
		}
		p.mu.Unlock()
		select {
		case <-p.space:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		p.mu.Lock()
	}
	p.pending = append(p.pending, pendingSegment{seg, progress, time.Now()})
	p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx) // the job ended (cancelled, lease lost): stop the engine
	}
	signal(p.wake)
	return nil
}

// flush says the engine is done and waits until core has every segment, or
// the job ended first (the cause).
func (p *pusher) flush() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	signal(p.wake)
	<-p.done
	return p.err
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run sends the buffer in batches, at most one call per interval, retrying
// failures with backoff until the job ends: the lease (the heartbeat's
// business) decides how long a core outage the job outlives.
func (p *pusher) run() {
	defer close(p.done)
	ctx, t := p.t.ctx, p.t
	var last time.Time // the last call's start
	var retry time.Duration
	failures := 0
	for {
		p.mu.Lock()
		n, closed := len(p.pending), p.closed
		var oldest time.Time
		if n > 0 {
			oldest = p.pending[0].at
		}
		p.mu.Unlock()
		if n == 0 {
			if closed {
				return
			}
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				p.err = context.Cause(ctx)
				return
			}
		}
		at := last.Add(max(p.interval, retry))
		if !closed && n < maxPushBatch {
			at = later(at, oldest.Add(p.interval)) // let a batch gather
		}
		if d := time.Until(at); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-p.wake: // more segments, or the flush: look again
				timer.Stop()
				continue
			case <-ctx.Done():
				timer.Stop()
				p.err = context.Cause(ctx)
				return
			}
		}
		if ctx.Err() != nil {
			p.err = context.Cause(ctx)
			return
		}
		p.mu.Lock()
		batch := p.pending[:min(len(p.pending), maxPushBatch)]
		segs := make([]*ytcaptionv1.Segment, len(batch))
		for i, b := range batch {
			segs[i] = b.seg
		}
		progress := batch[len(batch)-1].progress
		p.pushes++
		p.mu.Unlock()
		last = time.Now()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := p.a.core.PushSegments(cctx, connect.NewRequest(&ytcaptionv1.PushSegmentsRequest{
			JobId: t.asg.GetJobId(), Epoch: t.asg.GetEpoch(), Segments: segs, Progress: progress}))
		cancel()
		switch {
		case err == nil:
			failures, retry = 0, 0
			p.mu.Lock()
			p.pending = p.pending[len(segs):]
			p.mu.Unlock()
			signal(p.space)
			if resp.Msg.GetCancel() {
				t.cancel(errCancelled)
				p.err = errCancelled
				return
			}
		case leaseLost(err):
			t.cancel(errLeaseLost)
			p.err = errLeaseLost
			return
		case ctx.Err() != nil:
			p.err = context.Cause(ctx)
			return
		default:
			failures++
			retry = retryDelay(failures)
			t.log.WarnContext(ctx, "push segments", "first_seq", segs[0].GetSeq(), "segments", len(segs), "attempt", failures, "err", err)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
