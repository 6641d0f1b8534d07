package sqldb_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

// handles opens two handles on one fresh database of each kind, as two
// replicas would: two pools on PostgreSQL; on SQLite one handle twice, since
// one process owns a data directory (a second open is refused).
var handles = []struct {
	name string
	open func(t *testing.T) (a, b sqldb.DB)
}{
	{"postgres", func(t *testing.T) (sqldb.DB, sqldb.DB) {
		url := pgtest.URL(t)
		var dbs [2]sqldb.DB
		for i := range dbs {
			p, err := pgxpool.New(context.Background(), url)
			require.NoError(t, err)
			dbs[i] = sqldb.FromPool(p)
			t.Cleanup(dbs[i].Close)
		}
		return dbs[0], dbs[1]
	}},
	{"sqlite", func(t *testing.T) (sqldb.DB, sqldb.DB) {
		db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "ytcaption.db"))
		require.NoError(t, err)
		t.Cleanup(db.Close)
		return db, db
	}},
}

// next waits for l's next notification, failing the test after 10 s.
func next(t *testing.T, l sqldb.Listener) sqldb.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := l.Next(ctx)
	require.NoError(t, err)
	return n
}

// TestNotifyReachesListeners: what one handle notifies reaches a listener on
// the other, in order, on its channel only, from the moment Listen returns.
func TestNotifyReachesListeners(t *testing.T) {
	t.Parallel()
	for _, h := range handles {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := h.open(t)
			l, err := b.Listen(ctx, "wake")
			require.NoError(t, err)
			defer l.Close()
			other, err := b.Listen(ctx, "other")
			require.NoError(t, err)
			defer other.Close()

			require.NoError(t, a.Notify(ctx, "wake", "one"))
			require.NoError(t, a.Notify(ctx, "other", "elsewhere"))
			require.NoError(t, a.Notify(ctx, "wake", "two"))
			require.NoError(t, a.Notify(ctx, "wake", "three", "four", "five")) // a batch: one round trip
			for _, want := range []string{"one", "two", "three", "four", "five"} {
				require.Equal(t, sqldb.Notification{Payload: want}, next(t, l))
			}
			require.Equal(t, sqldb.Notification{Payload: "elsewhere"}, next(t, other))
		})
	}
}

// TestListenerReportsLostNotifications: a PostgreSQL listener whose
// connection dies reconnects and says notifications may have been lost.
func TestListenerReportsLostNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := handles[0].open(t)
	l, err := b.Listen(ctx, "wake")
	require.NoError(t, err)
	defer l.Close()
	_, err = a.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = l.Next(wctx)
	require.Error(t, err, "the dead connection is reported")
	require.Equal(t, sqldb.Notification{Lost: true}, next(t, l), "the reconnect says what it missed")
	require.NoError(t, a.Notify(ctx, "wake", "again"))
	require.Equal(t, sqldb.Notification{Payload: "again"}, next(t, l), "listening again")
}

// TestSQLiteListenerFallingBehindIsToldSo: Notify never waits for a slow
// listener; the listener learns it missed some instead.
func TestSQLiteListenerFallingBehindIsToldSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := handles[1].open(t)
	l, err := db.Listen(ctx, "wake")
	require.NoError(t, err)
	defer l.Close()
	for range 10_000 { // far past any buffer
		require.NoError(t, db.Notify(ctx, "wake", "x"))
	}
	require.Equal(t, sqldb.Notification{Lost: true}, next(t, l))
}

// TestLockSessionIsExclusiveUntilReleased: one session holds the lock, the
// other handle is refused until it is released.
func TestLockSessionIsExclusiveUntilReleased(t *testing.T) {
	t.Parallel()
	for _, h := range handles {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := h.open(t)
			held, ok, err := a.TryLockSession(ctx, 7)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, held.Alive(ctx))
			_, ok, err = b.TryLockSession(ctx, 7)
			require.NoError(t, err)
			require.False(t, ok, "taken")
			other, ok, err := b.TryLockSession(ctx, 8)
			require.NoError(t, err)
			require.True(t, ok, "another key is free")
			other.Release()
			held.Release()
			again, ok, err := b.TryLockSession(ctx, 7)
			require.NoError(t, err)
			require.True(t, ok, "free after release")
			again.Release()
		})
	}
}

// TestLockWaitEndsWithItsContext: a waiter for a taken lock gives up when
// its context ends, on both kinds (a request must not wait forever behind a
// stuck one), and gets the lock once it is free.
func TestLockWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	for _, h := range handles {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, b := h.open(t)
			for _, shared := range []bool{false, true} {
				release, ok, err := a.Lock(ctx, 11, false, true)
				require.NoError(t, err)
				require.True(t, ok)
				waiting, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				_, _, err = b.Lock(waiting, 11, shared, true)
				cancel()
				require.Error(t, err, "shared %v: the wait ended with its context", shared)
				got := make(chan func(), 1)
				go func() {
					r, _, err := b.Lock(ctx, 11, shared, true)
					if err == nil {
						got <- r
					}
				}()
				release()
				select {
				case r := <-got:
					r()
				case <-time.After(10 * time.Second):
					t.Fatalf("shared %v: the waiter did not get the freed lock", shared)
				}
			}
		})
	}
}

// TestLockSessionNoticesItsDeadConnection: on PostgreSQL the server releases
// a session lock with its connection; Alive must say so.
func TestLockSessionNoticesItsDeadConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := handles[0].open(t)
	held, ok, err := a.TryLockSession(ctx, 9)
	require.NoError(t, err)
	require.True(t, ok)
	defer held.Release()
	_, err = b.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = 9 AND granted`)
	require.NoError(t, err)
	// pg_terminate_backend only signals the backend: poll until it is gone.
	require.Eventually(t, func() bool { return held.Alive(ctx) != nil }, 10*time.Second, 10*time.Millisecond)
}

// TestSQLiteWritesTakeTurnsAndReadsDoNot: the SQLite driver queues this
// process's writers (sixteen at once used to starve some past the busy
// timeout) and never a read, even one that names a column like updated_at:
// a transaction reading beside itself must not wait for its own turn.
func TestSQLiteWritesTakeTurnsAndReadsDoNot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	_, err = db.Exec(ctx, `CREATE TABLE t (id integer PRIMARY KEY, n integer NOT NULL, updated_at integer)`)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `INSERT INTO t (id, n) VALUES (1, 0)`)
	require.NoError(t, err)

	tx, err := db.Begin(ctx)
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRow(ctx, `SELECT n FROM t WHERE updated_at IS NULL`).Scan(&n), "a read beside a transaction goes through")
	require.NoError(t, tx.Rollback(ctx))

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for range 20 {
				if _, err := db.Exec(ctx, `UPDATE t SET n = n + 1, updated_at = 1 WHERE id = 1`); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "no writer starved")
	}
	require.NoError(t, db.QueryRow(ctx, `SELECT n FROM t`).Scan(&n))
	require.Equal(t, 32*20, n)
}
