// Package jobcache keeps finished jobs in the edge's memory for a few
// seconds, so the clients that poll a job after it ended — scripts, dashboards,
// a CLI fetching the result — cost neither core nor its database.
//
// Only terminal jobs (succeeded, failed, cancelled) are kept: nothing a user
// does changes them, so a hit is never stale for the owner. Whatever an
// operator may do to a finished job (an admin retry, a purge) shows at once
// when it goes through this edge (Forget), at others within the TTL. A
// running job is never cached: its progress is always read from core.
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
}

// Cache maps job ids to finished jobs. The zero TTL disables it.
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
}

// New returns a cache keeping each finished job for ttl (0: keeps nothing).
func New(ttl time.Duration) *Cache {
	return &Cache{ttl: ttl, now: time.Now, m: map[string]entry{}}
}

// Get returns userID's job id if it is cached. The job is shared: callers
// must not modify it.
func (c *Cache) Get(userID, id string) *ytcaptionv1.Job {
	if c.ttl <= 0 {
		return nil
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || e.userID != userID || !c.now().Before(e.expires) {
		return nil
	}
	return e.job
}

// Put remembers j, read by its owner userID, if it is finished.
func (c *Cache) Put(userID string, j *ytcaptionv1.Job) {
	if c.ttl <= 0 || !Finished(j.GetStatus()) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
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
	c.m[j.GetId()] = entry{userID: userID, job: j, expires: now.Add(c.ttl)}
}

// Read is how both doors read a job: userID's job id from the cache when it
// is there, else from fetch (core), remembered if finished.
func (c *Cache) Read(userID, id string, fetch func() (*ytcaptionv1.Job, error)) (*ytcaptionv1.Job, error) {
	if j := c.Get(userID, id); j != nil {
		return j, nil
	}
	j, err := fetch()
	if err != nil {
		return nil, err
	}
	c.Put(userID, j)
	return j, nil
}

// Forget drops job id: it changed through this edge (a purge).
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// Finished says whether a job in status s can no longer change by itself.
func Finished(s ytcaptionv1.JobStatus) bool {
	switch s {
	case ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, ytcaptionv1.JobStatus_JOB_STATUS_FAILED, ytcaptionv1.JobStatus_JOB_STATUS_CANCELLED:
		return true
	}
	return false
}
