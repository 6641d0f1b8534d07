package replay

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/breaker"
)

func TestWithoutRedisRepliesAreKeptAndReplayedInProcess(t *testing.T) {
	ctx := context.Background()
	s := New(nil, breaker.New(nil, "redis", breaker.Config{}))
	now := time.Now()
	s.mem.now = func() time.Time { return now }
	fp, other := []byte("params"), []byte("other params")

	out, _, lock := s.Begin(ctx, "user", "k1", fp)
	require.Equal(t, Proceed, out)
	require.NotNil(t, lock)
	out, _, _ = s.Begin(ctx, "user", "k1", fp)
	require.Equal(t, InUse, out, "a duplicate while the first runs")

	lock.Finish(ctx, &Response{Fingerprint: fp, Status: 201, Body: []byte(`{"id":"j1"}`)})
	out, r, _ := s.Begin(ctx, "user", "k1", fp)
	require.Equal(t, Replay, out)
	require.Equal(t, []byte(`{"id":"j1"}`), r.Body)
	out, _, _ = s.Begin(ctx, "user", "k1", other)
	require.Equal(t, Mismatch, out)
	out, _, _ = s.Begin(ctx, "another user", "k1", fp)
	require.Equal(t, Proceed, out, "keys are scoped to their owner")

	// A failed request stores nothing and frees the key for a retry.
	_, _, lock = s.Begin(ctx, "user", "k2", fp)
	lock.Finish(ctx, nil)
	out, _, lock = s.Begin(ctx, "user", "k2", fp)
	require.Equal(t, Proceed, out)

	// A lock whose holder vanished expires; so does a reply, after 24 h.
	now = now.Add(s.lockTTL + time.Second)
	out, _, _ = s.Begin(ctx, "user", "k2", fp)
	require.Equal(t, Proceed, out)
	lock.Finish(ctx, &Response{Fingerprint: fp}) // the stale holder finishing late still stores its reply
	now = now.Add(25 * time.Hour)
	out, _, _ = s.Begin(ctx, "user", "k1", fp)
	require.Equal(t, Proceed, out)
	require.Len(t, s.mem.replies, 0, "expired replies are swept")
}
