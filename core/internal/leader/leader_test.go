package leader

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/pgtest"
)

type candidate struct {
	leading atomic.Bool
	terms   atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func campaign(t *testing.T, pool *pgxpool.Pool) *candidate {
	t.Helper()
	c := &candidate{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		Run(ctx, slog.New(slog.DiscardHandler), pool, Config{Key: 42, Retry: 50 * time.Millisecond, Check: 50 * time.Millisecond},
			func(ctx context.Context) {
				c.terms.Add(1)
				c.leading.Store(true)
				<-ctx.Done()
				c.leading.Store(false)
			})
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// TestOneLeaderAndFailover runs three candidates on one real database: exactly
// one leads at a time, and when the leader stops or its connection dies,
// another takes over.
func TestOneLeaderAndFailover(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	var cs []*candidate
	var pools []*pgxpool.Pool
	for range 3 {
		p, err := pgxpool.New(context.Background(), url)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		pools = append(pools, p)
		cs = append(cs, campaign(t, p))
	}
	var mu sync.Mutex
	leaders := func() []int {
		mu.Lock()
		defer mu.Unlock()
		var l []int
		for i, c := range cs {
			if c.leading.Load() {
				l = append(l, i)
			}
		}
		return l
	}
	require.Eventually(t, func() bool { return len(leaders()) == 1 }, 10*time.Second, 10*time.Millisecond)
	// Stable: nobody else becomes leader while one leads.
	for range 20 {
		require.LessOrEqual(t, len(leaders()), 1)
		time.Sleep(10 * time.Millisecond)
	}

	first := leaders()[0]
	cs[first].cancel()
	<-cs[first].done
	require.Eventually(t, func() bool { l := leaders(); return len(l) == 1 && l[0] != first }, 10*time.Second, 10*time.Millisecond,
		"a follower takes over when the leader stops")

	terms := func() int32 { return cs[0].terms.Load() + cs[1].terms.Load() + cs[2].terms.Load() }
	before := terms()
	// Kill the leader's connection from outside: it must notice and step down.
	_, err := pools[first].Exec(context.Background(), `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.objid = 42 AND l.granted`)
	require.NoError(t, err)
	// It may win again on a new connection, or a follower may: either way a
	// new term begins.
	require.Eventually(t, func() bool { return terms() > before }, 10*time.Second, 10*time.Millisecond, "the dead connection ended the term")
	require.Eventually(t, func() bool { return len(leaders()) == 1 }, 10*time.Second, 10*time.Millisecond, "someone leads again")
}
