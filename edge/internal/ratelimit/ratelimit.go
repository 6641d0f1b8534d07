// Package ratelimit enforces the edge's per-API-key limits with GCRA (the
// generic cell rate algorithm): in Redis, shared by every edge replica, via
// redis_rate; and, while Redis is unreachable, in process, per edge. A Redis
// outage never fails a request by itself — the limiter fails open to the local
// copy, as Envoy and Kong do — and every such decision is counted in
// ytcaption_edge_ratelimit_fallback_total.
//
// The edge's circuit breaker around Redis keeps an outage from costing each
// request a connection timeout: while it is open the local limiter answers at
// once.
package ratelimit

import (
	"context"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ytcaption/ytcaption/internal/breaker"
)

// Limit is one bucket: Rate requests per Period on average, Burst at once.
type Limit struct {
	Name   string // "create", "read", "failed_auth": names the policy in the headers and the bucket
	Rate   int
	Burst  int
	Period time.Duration // 0: a second
}

func (l Limit) period() time.Duration {
	if l.Period <= 0 {
		return time.Second
	}
	return l.Period
}

// draw is how many requests an edge takes from the limit's Redis bucket at
// once: an eighth of the burst, at most 64, so a bucket of 16 or fewer is
// decided request by request.
func (l Limit) draw() int { return min(max(l.Burst/8, 1), 64) }

// emission is GCRA's interval between requests at the limit's rate.
func (l Limit) emission() time.Duration { return l.period() / time.Duration(l.Rate) }

// Decision is the answer for one request.
type Decision struct {
	Limit      Limit
	Allowed    bool
	Remaining  int           // requests that would be allowed right now
	RetryAfter time.Duration // when denied: wait this long
	ResetAfter time.Duration // until the bucket is full again
	Fallback   bool          // decided by the local limiter: Redis was unreachable

	taken int // requests taken from Redis by this decision (a draw's worth, or 1)
}

// Limiter decides requests against Redis, falling back to a local GCRA.
type Limiter struct {
	redis    *redis_rate.Limiter // nil: local only
	rdb      *redis.Client
	breaker  *breaker.Breaker
	local    *local
	drawn    draws
	fallback prometheus.Counter
	timeout  time.Duration
}

// New returns a limiter on rdb (nil: in process only), guarded by br, the
// edge's Redis circuit breaker. Metrics go to reg (nil: not exported).
func New(rdb *redis.Client, br *breaker.Breaker, reg prometheus.Registerer) *Limiter {
	l := &Limiter{
		local:   newLocal(time.Now),
		breaker: br,
		timeout: 250 * time.Millisecond,
		fallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ytcaption_edge_ratelimit_fallback_total",
			Help: "Rate-limit decisions made by the edge's local limiter because Redis was unreachable.",
		}),
	}
	if reg != nil {
		reg.MustRegister(l.fallback)
	}
	if rdb != nil {
		l.redis, l.rdb = redis_rate.NewLimiter(pipelined(rdb)), rdb
	}
	return l
}

// pipelined is rdb's blocking auto-pipeline where it has one: the GCRA
// scripts of requests in flight together go to Redis in one write and come
// back in one read, each still decided on its own in Redis, so a limit stays
// exact across edges. At saturation that is most of the edge's syscalls and
// most of Redis's own work per request (docs/performance.md); a lone request
// is sent at once, with no wait for company. It closes with rdb.
func pipelined(rdb *redis.Client) interface {
	redis.Scripter
	Del(ctx context.Context, keys ...string) *redis.IntCmd
} {
	if ap, err := rdb.AutoPipeline(); err == nil {
		return ap
	}
	return rdb
}

// Allow takes one request from key's bucket for lim.
//
// With Redis, a bucket of a large burst is drawn on a few requests at a
// time (lim.draw): the edge takes that many from Redis in one decision and
// spends them in process, for at most a second. Every request let through
// was taken from the shared bucket first, so edges together never let
// more through than the limit; a client spread over several edges may get
// up to a draw fewer per edge at its limit's edge, and a draw's worth of
// Redis work serves that many requests (a Redis round trip per request
// was 40% of a saturated read's cost: docs/performance.md).
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) Decision {
	if l.redis == nil {
		return l.local.allow(lim.Name+":"+key, lim)
	}
	bucket := lim.Name + ":" + key
	n := lim.draw()
	if n == 1 {
		return l.take(ctx, bucket, lim, 1)
	}
	d := l.drawn.get(bucket, l.local.now)
	defer d.mu.Unlock()
	if dec, ok := d.spend(lim, l.local.now()); ok {
		return dec
	}
	dec := l.take(ctx, bucket, lim, n)
	if !dec.Allowed && !dec.Fallback {
		// Fewer than a draw left: the last ones one at a time.
		dec = l.take(ctx, bucket, lim, 1)
	}
	if dec.Allowed && !dec.Fallback {
		d.refill(dec, l.local.now())
		dec.Remaining += d.left
	}
	return dec
}

// take takes n requests from bucket in Redis (all or none), or, while Redis
// is unreachable, one from the local limiter.
func (l *Limiter) take(ctx context.Context, bucket string, lim Limit, n int) Decision {
	var res *redis_rate.Result
	err := l.breaker.Do(func() error {
		rctx, cancel := context.WithTimeout(ctx, l.timeout)
		defer cancel()
		var err error
		res, err = l.redis.AllowN(rctx, bucket, redis_rate.Limit{Rate: lim.Rate, Burst: lim.Burst, Period: lim.period()}, n)
		return err
	})
	if err != nil {
		l.fallback.Inc()
		d := l.local.allow(bucket, lim)
		d.Fallback = true
		return d
	}
	d := Decision{Limit: lim, Allowed: res.Allowed > 0, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
	if d.Allowed {
		d.taken = res.Allowed
	} else {
		d.RetryAfter = res.RetryAfter
	}
	return d
}

// Return gives back the request that Allow's decision taken took from key's
// bucket for lim — for a budget that counts only some outcomes
// (refused API keys), known after the request was let through. It goes back
// where it was taken: Redis, or the local limiter that decided while Redis
// was unreachable. Best effort: a failure to return is not reported.
func (l *Limiter) Return(ctx context.Context, key string, lim Limit, taken Decision) {
	if l.redis != nil && !taken.Fallback {
		err := l.breaker.Do(func() error {
			rctx, cancel := context.WithTimeout(ctx, l.timeout)
			defer cancel()
			return giveBack.Run(rctx, l.rdb, []string{"rate:" + lim.Name + ":" + key}, lim.emission().Seconds()).Err()
		})
		if err == nil {
			return
		}
	}
	l.local.giveBack(lim.Name+":"+key, lim)
}

// giveBack moves a redis_rate bucket's theoretical arrival time (TAT) back
// by one emission interval, never before now: redis_rate's own script with a
// negative cost would leave a bucket one short when the give-back fills it.
// Times are redis_rate's: seconds since 2017-01-01, in a key under "rate:".
var giveBack = redis.NewScript(`
local tat = redis.call("GET", KEYS[1])
if not tat then
  return 0
end
local now = redis.call("TIME")
now = (now[1] - 1483228800) + (now[2] / 1000000)
local new_tat = tonumber(tat) - tonumber(ARGV[1])
if new_tat <= now then
  redis.call("DEL", KEYS[1])
else
  redis.call("SET", KEYS[1], new_tat, "EX", math.ceil(new_tat - now))
end
return 1
`)

// local is GCRA in process, the same arithmetic as redis_rate's script: each
// key keeps its theoretical arrival time (TAT).
type local struct {
	now func() time.Time
	mu  sync.Mutex
	tat map[string]time.Time
}

// maxLocalKeys bounds memory during a long outage with many keys; a cleared
// map forgets only how full buckets were, erring on the side of allowing.
const maxLocalKeys = 100_000

func newLocal(now func() time.Time) *local { return &local{now: now, tat: map[string]time.Time{}} }

func (g *local) allow(key string, lim Limit) Decision {
	now := g.now()
	emission := lim.emission()
	g.mu.Lock()
	defer g.mu.Unlock()
	tat := g.tat[key]
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(emission)
	allowAt := newTAT.Add(-emission * time.Duration(lim.Burst))
	diff := now.Sub(allowAt)
	if diff < 0 {
		return Decision{Limit: lim, RetryAfter: -diff, ResetAfter: tat.Sub(now)}
	}
	if len(g.tat) >= maxLocalKeys {
		clear(g.tat)
	}
	g.tat[key] = newTAT
	return Decision{Limit: lim, Allowed: true, Remaining: int(math.Floor(float64(diff) / float64(emission))), ResetAfter: newTAT.Sub(now)}
}

func (g *local) giveBack(key string, lim Limit) {
	now := g.now()
	emission := lim.emission()
	g.mu.Lock()
	defer g.mu.Unlock()
	tat, ok := g.tat[key]
	if !ok || !tat.After(now) {
		return // already full
	}
	if tat = tat.Add(-emission); tat.Before(now) {
		tat = now
	}
	g.tat[key] = tat
}

// draws are the requests each bucket has taken from Redis and not yet let
// through (Allow), by bucket.
type draws struct {
	mu sync.Mutex
	m  map[string]*draw
}

// draw is what is left of one bucket's last take.
type draw struct {
	mu    sync.Mutex
	left  int       // taken and not yet let through
	until time.Time // when what is left lapses
	dec   Decision  // the take's decision: the headers' remaining and reset
}

// lapse bounds how long taken requests wait to be let through: a client
// that pauses must not come back with a draw on top of a refilled burst.
const lapse = time.Second

// get returns bucket's draw, locked; keys seen once go when the map grows
// past maxLocalKeys and their draws have lapsed.
func (ds *draws) get(bucket string, now func() time.Time) *draw {
	ds.mu.Lock()
	if ds.m == nil {
		ds.m = map[string]*draw{}
	}
	d := ds.m[bucket]
	if d == nil {
		if len(ds.m) >= maxLocalKeys {
			t := now()
			maps.DeleteFunc(ds.m, func(_ string, d *draw) bool {
				if !d.mu.TryLock() {
					return false // in use
				}
				defer d.mu.Unlock()
				return !t.Before(d.until)
			})
		}
		d = &draw{}
		ds.m[bucket] = d
	}
	ds.mu.Unlock()
	d.mu.Lock()
	return d
}

// spend lets one request through from what is left, if anything is.
func (d *draw) spend(lim Limit, now time.Time) (Decision, bool) {
	if d.left == 0 || !now.Before(d.until) {
		d.left = 0
		return Decision{}, false
	}
	d.left--
	dec := d.dec
	dec.Limit, dec.Remaining = lim, dec.Remaining+d.left
	return dec, true
}

// refill keeps what a take brought beyond the request that made it.
func (d *draw) refill(dec Decision, now time.Time) {
	d.left, d.until, d.dec = dec.taken-1, now.Add(lapse), dec
}
