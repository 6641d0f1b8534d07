package dispatch

import (
	"context"
	"sync"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// Creations announces new jobs with fewer notifications: at a thousand
// creations a second, one NOTIFY each (a statement and a commit of its own,
// through PostgreSQL's one notification queue, on the creating request's
// path) cost about as much as the creations. A new job concerns other
// replicas only as a broadcast — "there is work in this state" — since
// nobody there can be holding or watching a job that did not exist, so any
// number of creations made while one notification is being sent ride on
// the next one.
//
// Announce is the store's observer (store.OnChange) in place of
// Bus.Announce: every other change goes to the bus unchanged; a new job
// wakes this replica's waiters at once, as before, and is handed to Run,
// which publishes off the request's path. A burst thus costs one
// notification per round trip to the database rather than one per job,
// and the first job of a quiet spell is published at once. Like every
// notification, these may be lost (a crash before Run sends one): the
// pollers' fallback covers it.
type Creations struct {
	bus  *Bus
	kick chan struct{}

	mu     sync.Mutex
	latest map[job.Status]string // per state a new job entered: the newest not yet published
}

// NewCreations returns the coalescing announcer of bus's new jobs.
func NewCreations(bus *Bus) *Creations {
	return &Creations{bus: bus, kick: make(chan struct{}, 1), latest: map[job.Status]string{}}
}

// Announce is Bus.Announce, with new jobs' notifications left to Run.
func (c *Creations) Announce(ctx context.Context, ch store.Change) {
	if ch.From != "" {
		c.bus.Announce(ctx, ch)
		return
	}
	c.bus.wake(ch)
	c.mu.Lock()
	c.latest[ch.To] = ch.JobID
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // Run has a kick waiting: it will see this job's state too
	}
}

// Run publishes new jobs until ctx ends: for each state new jobs entered
// since the last pass, one notification naming the newest.
func (c *Creations) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		c.mu.Lock()
		batch := c.latest
		c.latest = make(map[job.Status]string, len(batch))
		c.mu.Unlock()
		for to, id := range batch {
			c.bus.publish(ctx, store.Change{JobID: id, To: to})
		}
	}
}
