package agent

import (
	"sync"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// relay lets a slot's next poll ride on the completion of its previous job
// (complete-and-next: CompleteJob's next), one call to core a job instead of
// two while work is queued.
//
// The slot's acquirer polls right after it hands a job to the engine, which
// is the moment the engine finished the job before it: that job's report
// (its last segments, then its completion) is under way. So the acquirer
// offers its poll to the report instead of calling AcquireJob, and waits for
// the answer. A report takes the poll when its last call goes out; a
// completion carries it, any other ending (failure, hand-back, drop) answers
// nil at once, as does a completion that brought no job, and the acquirer
// then long-polls as before.
//
// An assignment only ever reaches an acquirer that is waiting for it, which
// starts its heartbeat at once: a job is never held unleased.
type relay struct {
	mu      sync.Mutex
	pending int       // reports begun whose last call has not gone out
	waiting *nextPoll // the acquirer's offered poll, for the next of them to carry
}

// nextPoll is an offered poll and the way its one answer comes back.
type nextPoll struct {
	req *ytcaptionv1.AcquireJobRequest
	got chan *ytcaptionv1.Assignment // buffered: the first answer is the one
}

// answer gives p its answer (nil: poll yourself); later answers are
// dropped. A nil p takes none.
func (p *nextPoll) answer(a *ytcaptionv1.Assignment) {
	if p == nil {
		return
	}
	select {
	case p.got <- a:
	default:
	}
}

// expect is called as a report begins.
func (r *relay) expect() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending++
}

// offer hands req to a report that will call core; it returns where the
// answer comes, or nil when no report is pending and the acquirer must poll
// itself.
func (r *relay) offer(req *ytcaptionv1.AcquireJobRequest) <-chan *ytcaptionv1.Assignment {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == 0 {
		return nil
	}
	r.waiting = &nextPoll{req: req, got: make(chan *ytcaptionv1.Assignment, 1)}
	return r.waiting.got
}

// take is called once by each report, as its last call goes out: it returns
// the offered poll for that call to carry, if any. The report must answer it.
func (r *relay) take() *nextPoll {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending--
	p := r.waiting
	r.waiting = nil
	return p
}
