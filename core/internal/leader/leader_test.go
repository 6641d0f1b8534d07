package leader

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

type candidate struct {
	leading atomic.Bool
	terms   atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func campaign(t *testing.T, db sqldb.DB) *candidate {
	t.Helper()
	c := &candidate{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		Run(ctx, slog.New(slog.DiscardHandler), db, Config{Key: 42, Retry: 50 * time.Millisecond, Check: 50 * time.Millisecond},
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

// drivers open three replicas' handles on one fresh database: three pools on
// PostgreSQL; on SQLite one handle, since one process owns a data directory.
var drivers = []struct {
	name string
	open func(t *testing.T) [3]sqldb.DB
}{
	{"postgres", func(t *testing.T) [3]sqldb.DB {
		url := pgtest.URL(t)
		var dbs [3]sqldb.DB
		for i := range dbs {
			p, err := pgxpool.New(context.Background(), url)
			require.NoError(t, err)
			dbs[i] = sqldb.FromPool(p)
			t.Cleanup(dbs[i].Close)
		}
		return dbs
	}},
	{"sqlite", func(t *testing.T) [3]sqldb.DB {
		db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "ytcaption.db"))
		require.NoError(t, err)
		t.Cleanup(db.Close)
		return [3]sqldb.DB{db, db, db}
	}},
}

func leaders(cs []*candidate) []int {
	var l []int
	for i, c := range cs {
		if c.leading.Load() {
			l = append(l, i)
		}
	}
	return l
}

// TestOneLeaderAndFailover runs three candidates on one database of each
// kind: exactly one leads at a time, and when the leader stops another takes
// over.
func TestOneLeaderAndFailover(t *testing.T) {
	t.Parallel()
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			var cs []*candidate
			for _, db := range d.open(t) {
				cs = append(cs, campaign(t, db))
			}
			require.Eventually(t, func() bool { return len(leaders(cs)) == 1 }, 10*time.Second, 10*time.Millisecond)
			// Stable: nobody else becomes leader while one leads.
			for range 20 {
				require.LessOrEqual(t, len(leaders(cs)), 1)
				time.Sleep(10 * time.Millisecond)
			}
			first := leaders(cs)[0]
			require.EqualValues(t, 1, cs[first].terms.Load())
			cs[first].cancel()
			<-cs[first].done
			require.Eventually(t, func() bool { l := leaders(cs); return len(l) == 1 && l[0] != first }, 10*time.Second, 10*time.Millisecond,
				"a follower takes over when the leader stops")
		})
	}
}

// TestLeaderStepsDownWhenItsConnectionDies: on PostgreSQL the server drops a
// session lock with its connection; the leader must notice and stop its duty.
func TestLeaderStepsDownWhenItsConnectionDies(t *testing.T) {
	t.Parallel()
	dbs := drivers[0].open(t)
	var cs []*candidate
	for _, db := range dbs[:2] {
		cs = append(cs, campaign(t, db))
	}
	require.Eventually(t, func() bool { return len(leaders(cs)) == 1 }, 10*time.Second, 10*time.Millisecond)
	terms := func() int32 { return cs[0].terms.Load() + cs[1].terms.Load() }
	before := terms()
	// Kill the leader's connection from outside: it must notice and step
	// down. Only in this test's database: TestOneLeaderAndFailover's leader,
	// in a database of its own, holds the same key, and killing it there
	// made that test see two leaders (its follower took over before the
	// killed leader's next check).
	_, err := dbs[2].Exec(context.Background(), `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.objid = 42 AND l.granted
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	require.NoError(t, err)
	// It may win again on a new connection, or a follower may: either way a
	// new term begins.
	require.Eventually(t, func() bool { return terms() > before }, 10*time.Second, 10*time.Millisecond, "the dead connection ended the term")
	require.Eventually(t, func() bool { return len(leaders(cs)) == 1 }, 10*time.Second, 10*time.Millisecond, "someone leads again")
}
