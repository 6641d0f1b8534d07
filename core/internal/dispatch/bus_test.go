package dispatch

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no wake-up within 10 s", what)
	}
}

// TestBusWakesOtherReplicas runs two buses — two core replicas — on one real
// Postgres database: what one announces wakes the other's waiters.
func TestBusWakesOtherReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	log := slog.New(slog.DiscardHandler)
	dbs := make([]sqldb.DB, 2)
	for i := range dbs {
		p, err := pgxpool.New(context.Background(), url)
		require.NoError(t, err)
		dbs[i] = sqldb.FromPool(p)
		t.Cleanup(dbs[i].Close)
	}
	a, b := NewBus(log, dbs[0], "core-a"), NewBus(log, dbs[1], "core-b")
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() { defer close(listening); b.Listen(ctx) }()
	defer func() { cancel(); <-listening }()
	// LISTEN is asynchronous to start: announce until b hears one.
	ready := b.Ready.Wait()
	require.Eventually(t, func() bool {
		a.JobReady(ctx)
		select {
		case <-ready:
			return true
		default:
			return false
		}
	}, 10*time.Second, 50*time.Millisecond, "b never heard a")

	queued := b.Queued.Wait()
	a.JobQueued(ctx)
	waitClosed(t, queued, "queued")

	cancelled, release := b.Cancels.Wait("job-1")
	defer release()
	other, releaseOther := b.Cancels.Wait("job-2")
	defer releaseOther()
	a.JobCancelled(ctx, "job-1")
	waitClosed(t, cancelled, "cancel of job-1")
	select {
	case <-other:
		t.Fatal("a cancel of job-1 woke the waiter on job-2")
	default:
	}

	// The listener's connection dies: it reconnects, wakes its pollers (they
	// may have missed notifications meanwhile) and hears new ones again.
	afterDrop := b.Ready.Wait()
	_, err := dbs[0].Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	waitClosed(t, afterDrop, "wake-up after reconnect")
	again := b.Queued.Wait()
	require.Eventually(t, func() bool {
		a.JobQueued(ctx)
		select {
		case <-again:
			return true
		default:
			return false
		}
	}, 10*time.Second, 50*time.Millisecond, "b deaf after reconnect")
}

// TestSingleBoxBusWakesWithinTheProcess: on SQLite the bus's notifications
// stay in the process, and two buses on one database (two services of one
// box) still wake each other.
func TestSingleBoxBusWakesWithinTheProcess(t *testing.T) {
	t.Parallel()
	db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "ytcaption.db"))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	log := slog.New(slog.DiscardHandler)
	a, b := NewBus(log, db, "core-a"), NewBus(log, db, "core-b")
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	go func() { defer close(listening); b.Listen(ctx) }()
	defer func() { cancel(); <-listening }()
	ready := b.Ready.Wait()
	require.Eventually(t, func() bool {
		a.JobReady(ctx)
		return closed(ready)
	}, 10*time.Second, 50*time.Millisecond, "b never heard a")
	changed, release := b.Changed.Wait("job-1")
	defer release()
	a.JobChanged(ctx, "job-1")
	waitClosed(t, changed, "change of job-1")
}

func TestBusIgnoresItsOwnEchoes(t *testing.T) {
	t.Parallel()
	b := NewBus(slog.New(slog.DiscardHandler), nil, "core-a")
	ready := b.Ready.Wait()
	b.deliver("ready:core-a")
	select {
	case <-ready:
		t.Fatal("own notification delivered twice")
	default:
	}
	b.deliver("ready:core-b")
	waitClosed(t, ready, "remote ready")
}
