package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
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
		a.Announce(ctx, store.Change{JobID: "job-0", From: job.StatusDownloading, To: job.StatusReady})
		select {
		case <-ready:
			return true
		default:
			return false
		}
	}, 10*time.Second, 50*time.Millisecond, "b never heard a")

	queued := b.Queued.Wait()
	a.Announce(ctx, store.Change{JobID: "job-0", From: job.StatusDownloading, To: job.StatusQueued})
	waitClosed(t, queued, "queued")

	// Changes announced together travel in batches (publish), and every one
	// arrives.
	var changed []<-chan struct{}
	for i := range 40 {
		ch, release := b.Changed.Wait(fmt.Sprintf("many-%d", i))
		defer release()
		changed = append(changed, ch)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			a.Announce(ctx, store.Change{JobID: fmt.Sprintf("many-%d", i), From: job.StatusReady, To: job.StatusTranscribing})
		})
	}
	wg.Wait()
	for i, ch := range changed {
		waitClosed(t, ch, fmt.Sprintf("change %d of 40 announced at once", i))
	}

	cancelled, release := b.Cancels.Wait("job-1")
	defer release()
	other, releaseOther := b.Cancels.Wait("job-2")
	defer releaseOther()
	a.Announce(ctx, store.Change{JobID: "job-1", From: job.StatusTranscribing, To: job.StatusCancelled})
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
		a.Announce(ctx, store.Change{JobID: "job-0", From: "", To: job.StatusQueued})
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
		a.Announce(ctx, store.Change{JobID: "job-0", From: "", To: job.StatusReady})
		return closed(ready)
	}, 10*time.Second, 50*time.Millisecond, "b never heard a")
	changed, release := b.Changed.Wait("job-1")
	defer release()
	a.Announce(ctx, store.Change{JobID: "job-1", From: job.StatusTranscribing, To: job.StatusTranscribing})
	waitClosed(t, changed, "change of job-1")
}

// stuckDB is a database whose Notify waits until released, then fails the
// first failures calls; it records what it was given.
type stuckDB struct {
	sqldb.DB
	release  chan struct{}
	mu       sync.Mutex
	failures int
	sent     [][]string
}

func (d *stuckDB) Notify(_ context.Context, _ string, payloads ...string) error {
	<-d.release
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failures > 0 {
		d.failures--
		return errors.New("database unreachable")
	}
	d.sent = append(d.sent, payloads)
	return nil
}

func (d *stuckDB) batches() [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.sent)
}

// TestAnnounceNeverWaitsForTheDatabase: a change wakes this replica's
// waiters at once and returns while the database does not answer; what
// could not be sent is replaced by one "look again" (lost) at the head of
// the next batch, which wakes every poller of the replica that hears it.
func TestAnnounceNeverWaitsForTheDatabase(t *testing.T) {
	t.Parallel()
	db := &stuckDB{release: make(chan struct{}), failures: 1}
	a := NewBus(slog.New(slog.DiscardHandler), db, "core-a")
	ready := a.Ready.Wait()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 3 {
			a.Announce(context.Background(), store.Change{JobID: fmt.Sprintf("job-%d", i), From: job.StatusDownloading, To: job.StatusReady})
		}
	}()
	waitClosed(t, done, "announcing while the database hangs")
	waitClosed(t, ready, "this replica's own agents")
	change := func(i int) string {
		return encode(store.Change{JobID: fmt.Sprintf("job-%d", i), From: job.StatusDownloading, To: job.StatusReady}, "core-a")
	}
	close(db.release) // the first send fails: what it held, and what waited, is dropped
	require.Eventually(t, func() bool {
		a.pubMu.Lock()
		defer a.pubMu.Unlock()
		return !a.sending
	}, 10*time.Second, 10*time.Millisecond, "the sender stops on a failure instead of spinning")
	require.Empty(t, db.batches())
	a.Announce(context.Background(), store.Change{JobID: "job-3", From: job.StatusDownloading, To: job.StatusReady})
	require.Eventually(t, func() bool { return len(db.batches()) == 1 }, 10*time.Second, 10*time.Millisecond)
	first := db.batches()[0]
	require.Equal(t, []string{encode(store.Change{JobID: lost}, "core-a"), change(3)}, first, "the next batch begins with lost")
	a.Announce(context.Background(), store.Change{JobID: "job-4", From: job.StatusDownloading, To: job.StatusReady})
	require.Eventually(t, func() bool { return len(db.batches()) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{change(4)}, db.batches()[1], "lost is said once")

	b := NewBus(slog.New(slog.DiscardHandler), nil, "core-b")
	queued, ready := b.Queued.Wait(), b.Ready.Wait()
	b.deliver(first[0])
	waitClosed(t, queued, "fetch workers told to look again")
	waitClosed(t, ready, "agents told to look again")
}

func TestBusIgnoresItsOwnEchoes(t *testing.T) {
	t.Parallel()
	b := NewBus(slog.New(slog.DiscardHandler), nil, "core-a")
	ready := b.Ready.Wait()
	c := store.Change{JobID: "job-1", From: job.StatusDownloading, To: job.StatusReady}
	b.deliver(encode(c, "core-a"))
	require.False(t, closed(ready), "own notification delivered twice")
	b.deliver(encode(c, "core:b")) // an instance name may hold colons
	waitClosed(t, ready, "remote ready")
	changed, release := b.Changed.Wait("job-1")
	defer release()
	b.deliver("ready:core-b") // the previous version's format: ignored, not misread
	require.False(t, closed(changed))
}

// TestAnnounceWakesWhoTheChangeConcerns is the whole mapping from a job's
// change to its wake-ups: queued wakes fetch workers, ready wakes agents, a
// held job cancelled wakes its holder, and every change wakes watchers.
func TestAnnounceWakesWhoTheChangeConcerns(t *testing.T) {
	t.Parallel()
	const (
		queued       = job.StatusQueued
		downloading  = job.StatusDownloading
		ready        = job.StatusReady
		transcribing = job.StatusTranscribing
		succeeded    = job.StatusSucceeded
		failed       = job.StatusFailed
		cancelled    = job.StatusCancelled
	)
	type woke struct{ queued, ready, cancel, changed bool }
	for _, c := range []struct {
		from, to job.Status
		want     woke
	}{
		{"", queued, woke{queued: true, changed: true}}, // created
		{"", ready, woke{ready: true, changed: true}},   // a chunk of long audio
		{queued, downloading, woke{changed: true}},      // claimed
		{downloading, ready, woke{ready: true, changed: true}},
		{downloading, queued, woke{queued: true, changed: true}}, // released or retried
		{downloading, transcribing, woke{changed: true}},         // split into chunks
		{downloading, succeeded, woke{changed: true}},            // cache or captions
		{ready, transcribing, woke{changed: true}},
		{transcribing, transcribing, woke{changed: true}}, // progress, segments
		{transcribing, ready, woke{ready: true, changed: true}},
		{transcribing, succeeded, woke{changed: true}},
		{transcribing, failed, woke{changed: true}},
		{failed, queued, woke{queued: true, changed: true}}, // an admin's retry
		{queued, cancelled, woke{changed: true}},            // nobody holds it
		{ready, cancelled, woke{changed: true}},
		{downloading, cancelled, woke{cancel: true, changed: true}},
		{transcribing, cancelled, woke{cancel: true, changed: true}},
		{cancelled, cancelled, woke{changed: true}}, // a cancelled holder's last segments
		{queued, queued, woke{changed: true}},       // a change within queued is no new work
		{ready, ready, woke{changed: true}},
	} {
		t.Run(string(c.from)+"->"+string(c.to), func(t *testing.T) {
			t.Parallel()
			b := NewBus(slog.New(slog.DiscardHandler), nil, "core-a")
			q, r := b.Queued.Wait(), b.Ready.Wait()
			cancel, releaseCancel := b.Cancels.Wait("job-1")
			defer releaseCancel()
			changed, releaseChanged := b.Changed.Wait("job-1")
			defer releaseChanged()
			otherCancel, releaseOther := b.Cancels.Wait("job-2")
			defer releaseOther()
			otherChanged, releaseOtherChanged := b.Changed.Wait("job-2")
			defer releaseOtherChanged()
			b.wake(store.Change{JobID: "job-1", From: c.from, To: c.to})
			require.Equal(t, c.want, woke{closed(q), closed(r), closed(cancel), closed(changed)})
			require.False(t, closed(otherCancel) || closed(otherChanged), "another job's waiters")
		})
	}
}
