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
}

// Limiter decides requests against Redis, falling back to a local GCRA.
type Limiter struct {
	redis    *redis_rate.Limiter // nil: local only
	rdb      *redis.Client
	breaker  *breaker.Breaker
	local    *local
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
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) Decision {
	if l.redis != nil {
		var res *redis_rate.Result
		err := l.breaker.Do(func() error {
			rctx, cancel := context.WithTimeout(ctx, l.timeout)
			defer cancel()
			var err error
			res, err = l.redis.Allow(rctx, lim.Name+":"+key, redis_rate.Limit{Rate: lim.Rate, Burst: lim.Burst, Period: lim.period()})
			return err
		})
		if err == nil {
			d := Decision{Limit: lim, Allowed: res.Allowed > 0, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
			if !d.Allowed {
				d.RetryAfter = res.RetryAfter
			}
			return d
		}
		l.fallback.Inc()
		d := l.local.allow(lim.Name+":"+key, lim)
		d.Fallback = true
		return d
	}
	return l.local.allow(lim.Name+":"+key, lim)
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
