package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge/internal/redisx"
	"github.com/ytcaption/ytcaption/internal/redistest"
)

func randomKey() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var create = Limit{Name: "create", Rate: 10, Burst: 3}

// open is a limiter on the Redis at url, as an edge makes it.
func open(t *testing.T, url string, reg prometheus.Registerer) *Limiter {
	t.Helper()
	rdb, br, err := redisx.Open(url, reg)
	require.NoError(t, err)
	return New(rdb, br, reg)
}

func TestLocalGCRAAllowsTheBurstThenOnePerEmissionInterval(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newLocal(func() time.Time { return now })
	lim := Limit{Name: "create", Rate: 10, Burst: 20}
	for i := range 20 {
		d := g.allow("k", lim)
		require.True(t, d.Allowed, "request %d of the burst", i+1)
		require.Equal(t, 19-i, d.Remaining)
	}
	d := g.allow("k", lim)
	require.False(t, d.Allowed)
	require.Equal(t, 100*time.Millisecond, d.RetryAfter, "one request per 1/rate")
	require.Equal(t, 2*time.Second, d.ResetAfter, "the bucket refills in burst/rate")
	now = now.Add(100 * time.Millisecond)
	require.True(t, g.allow("k", lim).Allowed)
	require.False(t, g.allow("k", lim).Allowed)
	require.True(t, g.allow("other", lim).Allowed, "keys have separate buckets")
}

func TestRedisLimitIsSharedByEdges(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	a, b := open(t, r.URL(), nil), open(t, r.URL(), nil)
	ctx, key := context.Background(), randomKey()
	require.True(t, a.Allow(ctx, key, create).Allowed)
	require.True(t, b.Allow(ctx, key, create).Allowed)
	d := a.Allow(ctx, key, create)
	require.True(t, d.Allowed)
	require.Zero(t, d.Remaining)
	require.False(t, d.Fallback)
	d = b.Allow(ctx, key, create)
	require.False(t, d.Allowed, "the second edge sees the first one's requests")
	require.Greater(t, d.RetryAfter, time.Duration(0))
	require.LessOrEqual(t, d.RetryAfter, 100*time.Millisecond)
	require.True(t, a.Allow(ctx, key, Limit{Name: "read", Rate: 100, Burst: 100}).Allowed, "reads have their own bucket")
}

// TestConcurrentRequestsAreEachDecidedInRedis: requests in flight together
// go to Redis in one pipeline (pipelined), and a burst of 50 is drawn on six
// at a time (Limit.draw), yet of 200 at once against it through two edges,
// exactly 50 pass.
func TestConcurrentRequestsAreEachDecidedInRedis(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	edges := []*Limiter{open(t, r.URL(), nil), open(t, r.URL(), nil)}
	lim := Limit{Name: "read", Rate: 1, Period: time.Hour, Burst: 50}
	ctx, key := context.Background(), randomKey()
	var allowed, fallback atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			d := edges[i%2].Allow(ctx, key, lim)
			if d.Allowed {
				allowed.Add(1)
			}
			if d.Fallback {
				fallback.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, fallback.Load(), "Redis decided every one")
	require.Equal(t, int32(50), allowed.Load())
}

// TestEdgesNeverLetThroughMoreThanTheLimit: an edge takes a large bucket's
// requests from Redis a draw at a time and spends them itself; what one edge
// holds is gone from the bucket for the others, so together they stay
// within the limit, and what an edge holds lapses after a second.
func TestEdgesNeverLetThroughMoreThanTheLimit(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	now := time.Now()
	clock := func() time.Time { return now }
	a, b := open(t, r.URL(), nil), open(t, r.URL(), nil)
	a.local.now, b.local.now = clock, clock
	lim := Limit{Name: "read", Rate: 1, Period: time.Hour, Burst: 80} // draws of 10
	ctx, key := context.Background(), randomKey()
	first := a.Allow(ctx, key, lim)
	require.True(t, first.Allowed)
	require.Equal(t, 79, first.Remaining, "the headers count what the edge holds as remaining")
	allowed := 0
	for range 100 {
		if b.Allow(ctx, key, lim).Allowed {
			allowed++
		}
	}
	require.Equal(t, 70, allowed, "the other edge gets what the first did not take")
	for range 9 {
		require.True(t, a.Allow(ctx, key, lim).Allowed, "the first edge spends what it took")
	}
	require.False(t, a.Allow(ctx, key, lim).Allowed, "80 in all, no more")

	other := randomKey()
	require.Equal(t, 79, a.Allow(ctx, other, lim).Remaining) // a holds 9
	now = now.Add(lapse)
	require.Equal(t, 69, a.Allow(ctx, other, lim).Remaining, "the 9 held lapsed: a new draw from the bucket's 70")
}

// TestRedisOutageFallsBackToTheLocalLimiter stops Redis mid-test: requests
// are still decided (never failed), locally, and each such decision counted;
// once Redis is back and the breaker's cooldown is over, Redis decides again.
func TestRedisOutageFallsBackToTheLocalLimiter(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	reg := prometheus.NewRegistry()
	l := open(t, r.URL(), reg)
	ctx, key := context.Background(), randomKey()
	require.False(t, l.Allow(ctx, key, create).Fallback)

	r.Stop()
	start := time.Now()
	slow := Limit{Name: "create", Rate: 1, Burst: 3} // refills slower than the outage's first dials take
	for i := range 3 {
		d := l.Allow(ctx, key, slow)
		require.True(t, d.Fallback)
		require.True(t, d.Allowed, "request %d: the local bucket starts full", i+1)
	}
	d := l.Allow(ctx, key, slow)
	require.True(t, d.Fallback)
	require.False(t, d.Allowed, "the local limiter still limits")
	require.Equal(t, 4.0, testutil.ToFloat64(l.fallback))
	t.Logf("4 decisions during the outage took %s", time.Since(start))

	for !l.breaker.Open() { // enough failures open the breaker: then nothing waits on Redis
		require.True(t, l.Allow(ctx, key, slow).Fallback)
	}
	start = time.Now()
	for range 100 {
		l.Allow(ctx, randomKey(), slow)
	}
	t.Logf("100 decisions with the breaker open took %s", time.Since(start))

	r.Start()
	require.Eventually(t, func() bool { return !l.Allow(ctx, randomKey(), create).Fallback },
		15*time.Second, 100*time.Millisecond, "Redis decides again once it is back")
}

// TestReturnGivesBackARequestLocallyAndInRedis: a budget that counts only
// refused API keys takes a request first and gives it back when the key
// turns out valid; a period longer than a second spreads the refill.
func TestReturnGivesBackARequestLocallyAndInRedis(t *testing.T) {
	t.Parallel()
	failed := Limit{Name: "failed_auth", Rate: 2, Burst: 2, Period: time.Minute}
	r := redistest.Start(t)
	for name, l := range map[string]*Limiter{"local": New(nil, nil, nil), "redis": open(t, r.URL(), nil)} {
		ctx, key := context.Background(), randomKey()
		d := l.Allow(ctx, key, failed)
		require.True(t, d.Allowed, name)
		l.Return(ctx, key, failed, d) // a valid key: not counted
		require.True(t, l.Allow(ctx, key, failed).Allowed, name)
		require.True(t, l.Allow(ctx, key, failed).Allowed, name)
		d = l.Allow(ctx, key, failed)
		require.False(t, d.Allowed, "%s: two refusals spend the burst", name)
		require.Greater(t, d.RetryAfter, 20*time.Second, "%s: 2 a minute refill one every 30 s", name)
		require.LessOrEqual(t, d.RetryAfter, 30*time.Second, name)
		l.Return(ctx, key, failed, Decision{})
		require.True(t, l.Allow(ctx, key, failed).Allowed, "%s: a returned request can be taken again", name)
		require.False(t, d.Fallback, name)
	}
}

func TestStreamsCapPerKeyAndReleaseOnce(t *testing.T) {
	t.Parallel()
	s := NewStreams(prometheus.NewRegistry())
	var releases []func()
	for range 3 {
		rel, ok := s.Acquire("k", 3)
		require.True(t, ok)
		releases = append(releases, rel)
	}
	_, ok := s.Acquire("k", 3)
	require.False(t, ok, "the fourth")
	_, ok = s.Acquire("other", 3)
	require.True(t, ok, "keys are counted apart")
	releases[0]()
	releases[0]() // twice: still one place
	require.Equal(t, 2, s.Open("k"))
	_, ok = s.Acquire("k", 3)
	require.True(t, ok)
	_, ok = s.Acquire("k", 3)
	require.False(t, ok)
	for _, rel := range releases {
		rel()
	}
	require.Equal(t, 1, s.Open("k"))
	require.Equal(t, 2.0, testutil.ToFloat64(s.gauge))
}
