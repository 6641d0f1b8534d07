// Package jobcache keeps jobs in the edge's memory for a few seconds, so the
// clients that poll a job — a script waiting for it to end, a dashboard, a
// CLI fetching the result — cost neither core nor its database while the
// job has not changed.
//
// Finished jobs (succeeded, failed, cancelled) are always kept: nothing a
// user does changes them. A running job is kept only while the cache
// follows core's change feed (Follow: EdgeService.WatchJobChanges), which
// names every job that changes, on any core replica, so its entry is
// dropped (Forget) as soon as the edge hears of the change: a read after
// that sees the change. Without the feed (core unreachable, an older core)
// running jobs are always read from core, and a reconnecting feed drops
// everything, since changes may have been missed meanwhile. What this edge
// changes itself (a cancel, a purge, speaker names) it forgets before it
// answers. A read that was in flight when its job changed is not kept: it
// may hold the state from before.
//
// What the feed cannot name — a change made by a store without an observer
// (the admin command line) — shows within the TTL.
package jobcache

import (
	"sync"
	"time"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// maxEntries bounds memory; a cleared map only costs a few core reads.
const maxEntries = 100_000

// minSweep is the smallest map Put sweeps of expired entries.
const minSweep = 1024

type entry struct {
	userID  string
	job     *ytcaptionv1.Job
	expires time.Time
	encoded *encoded // the job as ReadEncoded's encode made it, once
}

// encoded is a cached job's encoding, made by the first read that asks.
type encoded struct {
	once sync.Once
	b    []byte
	err  error
}

// Cache maps job ids to jobs. The zero TTL disables it.
type Cache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]entry
	// sweepAt is the size at which Put next drops expired entries: twice
	// what was left after the last sweep, so the sweeps cost O(1) a Put.
	// Without them, expired entries stayed until the map reached
	// maxEntries: the soak (docs/soak.md) saw the edge's memory grow by
	// 1.7 KB a job, for hours.
	sweepAt int

	// live: the change feed is connected, so running jobs may be kept.
	live bool
	// epoch counts ForgetAll: a read begun before one is not kept.
	epoch uint64
	// changed and changedBefore are the ids forgotten in this tick and the
	// previous one (ticks of changedTick, counted by tick): a read in
	// flight when its job changed is not kept. A read that took longer than
	// a tick is not kept either, which bounds both maps by the changes of
	// two ticks.
	changed, changedBefore map[string]struct{}
	tick                   uint64
	tickAt                 time.Time
}

// changedTick is how long an invalidation is remembered for the reads in
// flight; a read taking longer is not kept.
const changedTick = time.Second

// ticket is where the cache stood when a read began.
type ticket struct{ epoch, tick uint64 }

// New returns a cache keeping each finished job for ttl (0: keeps nothing).
func New(ttl time.Duration) *Cache {
	return &Cache{ttl: ttl, now: time.Now, m: map[string]entry{}, changed: map[string]struct{}{}, changedBefore: map[string]struct{}{}}
}

// Get returns userID's job id if it is cached. The job is shared: callers
// must not modify it.
func (c *Cache) Get(userID, id string) *ytcaptionv1.Job {
	e, ok := c.lookup(userID, id)
	if !ok {
		return nil
	}
	return e.job
}

// lookup is userID's cached entry for job id, if any.
func (c *Cache) lookup(userID, id string) (entry, bool) {
	if c.ttl <= 0 {
		return entry{}, false
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || e.userID != userID || !c.now().Before(e.expires) {
		return entry{}, false
	}
	return e, true
}

// Put remembers j, read by its owner userID, if it is finished.
func (c *Cache) Put(userID string, j *ytcaptionv1.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(userID, j, c.ticketLocked())
}

// put keeps j, read by userID since t, when the cache may: finished, or
// running while the feed is followed; and j not changed since t.
func (c *Cache) put(userID string, j *ytcaptionv1.Job, t ticket) {
	if c.ttl <= 0 || (!Finished(j.GetStatus()) && !c.live) {
		return
	}
	now := c.now()
	c.rotate(now)
	if t.epoch != c.epoch || c.tick-t.tick > 1 {
		return
	}
	if _, ok := c.changed[j.GetId()]; ok {
		return
	}
	if _, ok := c.changedBefore[j.GetId()]; ok {
		return
	}
	if len(c.m) >= max(c.sweepAt, minSweep) {
		for id, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, id)
			}
		}
		c.sweepAt = 2 * len(c.m)
	}
	if len(c.m) >= maxEntries {
		clear(c.m)
	}
	c.m[j.GetId()] = entry{userID: userID, job: j, expires: now.Add(c.ttl), encoded: &encoded{}}
}

// ticketLocked says where the cache stands now; c.mu is held.
func (c *Cache) ticketLocked() ticket {
	c.rotate(c.now())
	return ticket{epoch: c.epoch, tick: c.tick}
}

// rotate starts a new tick of remembered invalidations when the last is
// over; c.mu is held.
func (c *Cache) rotate(now time.Time) {
	switch elapsed := now.Sub(c.tickAt); {
	case elapsed < changedTick:
		return
	case elapsed < 2*changedTick:
		c.changedBefore, c.changed = c.changed, c.changedBefore
		clear(c.changed)
		c.tick++
	default: // two ticks passed: both sets are over, and so is every read begun in them
		clear(c.changed)
		clear(c.changedBefore)
		c.tick += 2
	}
	c.tickAt = now
}

// Read is how both doors read a job: userID's job id from the cache when it
// is there, else from fetch (core), kept when it may be.
func (c *Cache) Read(userID, id string, fetch func() (*ytcaptionv1.Job, error)) (*ytcaptionv1.Job, error) {
	if j := c.Get(userID, id); j != nil {
		return j, nil
	}
	c.mu.Lock()
	t := c.ticketLocked()
	c.mu.Unlock()
	j, err := fetch()
	if err != nil {
		return nil, err
	}
	if c.ttl > 0 {
		c.mu.Lock()
		c.put(userID, j, t)
		c.mu.Unlock()
	}
	return j, nil
}

// ReadEncoded is Read for a door that answers with the job encoded (the
// REST door's JSON): a cached job is encoded by encode once, for every
// read while it stays cached, not once a read (encoding took about a
// quarter of the edge's own work on a saturated read of a finished job).
func (c *Cache) ReadEncoded(userID, id string, fetch func() (*ytcaptionv1.Job, error), encode func(*ytcaptionv1.Job) ([]byte, error)) ([]byte, error) {
	if e, ok := c.lookup(userID, id); ok {
		e.encoded.once.Do(func() { e.encoded.b, e.encoded.err = encode(e.job) })
		return e.encoded.b, e.encoded.err
	}
	j, err := c.Read(userID, id, fetch)
	if err != nil {
		return nil, err
	}
	return encode(j)
}

// Forget drops the jobs ids: they changed (the feed says so, or this edge
// changed them). A read of one of them in flight now is not kept.
func (c *Cache) Forget(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(c.now())
	for _, id := range ids {
		delete(c.m, id)
		c.changed[id] = struct{}{}
	}
}

// ForgetAll drops every job, and every read in flight: changes may have
// been missed.
func (c *Cache) ForgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.epoch++
}

// setLive says whether the feed is followed: only then are running jobs
// kept. Either way everything is dropped — going live, the jobs kept
// before may have changed unheard; going dark, the running ones may.
func (c *Cache) setLive(live bool) {
	c.mu.Lock()
	c.live = live
	c.mu.Unlock()
	c.ForgetAll()
}

// Finished says whether a job in status s can no longer change by itself.
func Finished(s ytcaptionv1.JobStatus) bool {
	switch s {
	case ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, ytcaptionv1.JobStatus_JOB_STATUS_FAILED, ytcaptionv1.JobStatus_JOB_STATUS_CANCELLED:
		return true
	}
	return false
}
