package webapp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/redistest"
)

// TestSessionsExpireAndEnd: a session opens with its own cookie only, ends
// at its TTL or when removed, and a cookie of the wrong shape or a forged
// one opens nothing.
func TestSessionsExpireAndEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSessions(nil, breaker.New(nil, "redis", breaker.Config{}), time.Hour)
	now := time.Now()
	s.now = func() time.Time { return now }
	cookie, sess, err := s.create(ctx, "key-1")
	require.NoError(t, err)
	got, err := s.get(ctx, cookie)
	require.NoError(t, err)
	require.Equal(t, sess, got)
	require.Equal(t, "key-1", got.Key)
	for _, bad := range []string{"", "short", strings.Repeat("A", 43), cookie[:42] + "B", cookie + "A"} {
		_, err := s.get(ctx, bad)
		require.ErrorIs(t, err, ErrNoSession, bad)
	}
	now = now.Add(time.Hour)
	_, err = s.get(ctx, cookie)
	require.ErrorIs(t, err, ErrNoSession, "expired")

	cookie, _, err = s.create(ctx, "key-2")
	require.NoError(t, err)
	require.NoError(t, s.remove(ctx, cookie))
	_, err = s.get(ctx, cookie)
	require.ErrorIs(t, err, ErrNoSession, "signed out")
}

// TestSessionsInRedisAreSealed: what Redis holds names neither the cookie
// nor the key, and Redis expires it.
func TestSessionsInRedisAreSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opts, err := redis.ParseURL(redistest.Start(t).URL())
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	s := newSessions(rdb, breaker.New(nil, "redis", breaker.Config{}), time.Hour)
	cookie, _, err := s.create(ctx, "secret-api-key")
	require.NoError(t, err)
	keys, err := rdb.Keys(ctx, redisPrefix+"*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.NotContains(t, keys[0], cookie)
	v, err := rdb.Get(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.NotContains(t, v, "secret-api-key", "sealed")
	ttl, err := rdb.TTL(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 60)
	got, err := s.get(ctx, cookie)
	require.NoError(t, err)
	require.Equal(t, "secret-api-key", got.Key)
	require.NoError(t, s.remove(ctx, cookie))
	n, err := rdb.Exists(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.Zero(t, n)
}
