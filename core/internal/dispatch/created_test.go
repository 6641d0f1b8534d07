package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

// TestCreationsBurstIsOneNotification: 100 jobs created while none is
// being published wake this replica's fetch workers at once and cost other
// replicas one notification, naming the newest, which wakes theirs; the
// next creation gets a notification of its own, and a transition is
// published as it happens.
func TestCreationsBurstIsOneNotification(t *testing.T) {
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	heard, err := dbs[1].Listen(ctx, Channel)
	require.NoError(t, err)
	defer heard.Close()
	next := func() string {
		t.Helper()
		nctx, stop := context.WithTimeout(ctx, 10*time.Second)
		defer stop()
		n, err := heard.Next(nctx)
		require.NoError(t, err)
		return n.Payload
	}

	a := NewBus(log, dbs[0], "core-a")
	c := NewCreations(a)
	local := a.Queued.Wait()
	for i := range 100 {
		c.Announce(ctx, store.Change{JobID: fmt.Sprint("job-", i), To: job.StatusQueued})
	}
	waitClosed(t, local, "this replica's fetch workers")

	running := make(chan struct{})
	go func() { defer close(running); c.Run(ctx) }()
	defer func() { cancel(); <-running }()
	require.Equal(t, "job-99::queued:core-a", next(), "one notification for the burst, naming the newest")
	c.Announce(ctx, store.Change{JobID: "job-100", To: job.StatusQueued})
	require.Equal(t, "job-100::queued:core-a", next(), "the next creation: nothing of the burst in between")
	c.Announce(ctx, store.Change{JobID: "job-100", From: job.StatusDownloading, To: job.StatusReady})
	require.Equal(t, "job-100:downloading:ready:core-a", next(), "a transition goes out as before")
}
