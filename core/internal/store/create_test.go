package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestOneStatementCreatesOnlyWhatNeedsNoDecision: a user without a quota
// gets a job from the single statement, on PostgreSQL with a new key too;
// a key seen before, or a user with a quota, gets nothing from it — the
// creating transaction must replay, refuse or count — and whatever the
// statement declined, CreateJobOnce still gets right.
func TestOneStatementCreatesOnlyWhatNeedsNoDecision(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		plain := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP}
		pg := s.Dialect() == sqldb.Postgres
		ok, err := s.CreateFast(ctx, plain)
		require.NoError(t, err)
		require.True(t, ok, "a user without a quota: one statement")

		ok, err = s.CreateFast(ctx, keyed(u, "k1", "fp"))
		require.NoError(t, err)
		require.Equal(t, pg, ok, "a new key: one statement on PostgreSQL")
		if !ok {
			_, _, err = s.CreateJobOnce(ctx, keyed(u, "k1", "fp"))
			require.NoError(t, err)
		} else {
			ok, err = s.CreateFast(ctx, keyed(u, "k1", "fp"))
			require.NoError(t, err)
			require.False(t, ok, "a key seen before is the transaction's to replay")
			again, replayed, err := s.CreateJobOnce(ctx, keyed(u, "k1", "fp"))
			require.NoError(t, err)
			require.True(t, replayed)
			jobs, _, err := s.ListJobs(ctx, u.ID, 10, "")
			require.NoError(t, err)
			require.Len(t, jobs, 2, "the replays created nothing")
			require.Contains(t, []string{jobs[0].ID, jobs[1].ID}, again.ID)
			_, _, err = s.CreateJobOnce(ctx, keyed(u, "k1", "other"))
			require.Equal(t, job.CodeIdempotencyKey, job.CodeOf(err))
		}

		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "three", MaxConcurrent: 3}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "three"))
		ok, err = s.CreateFast(ctx, plain)
		require.NoError(t, err)
		require.False(t, ok, "a user with a quota: the transaction counts")
		ok, err = s.CreateFast(ctx, keyed(u, "k2", "fp"))
		require.NoError(t, err)
		require.False(t, ok, "a user with a quota and a new key: the transaction counts")
		_, _, err = s.CreateJobOnce(ctx, keyed(u, "k2", "fp"))
		require.NoError(t, err, "the third of three")
		_, _, err = s.CreateJobOnce(ctx, keyed(u, "k3", "fp"))
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err), "3 jobs run already")
		_, replayed, err := s.CreateJobOnce(ctx, keyed(u, "k2", "fp"))
		require.NoError(t, err)
		require.True(t, replayed, "a replay is no new job: the quota does not refuse it")
	})
}

// TestConcurrentCreationsCommitTogether: creations arriving together share
// transactions (group commit), and each still gets a job of its own.
func TestConcurrentCreationsCommitTogether(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		const n = 200
		before := s.CreationBatches()
		ids := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				j, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg",
					SourceKind: job.SourceHTTP})
				ids[i], errs[i] = j.ID, err
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(ids))), n, "a job each")
		jobs, _, err := s.ListJobs(ctx, u.ID, n+1, "")
		require.NoError(t, err)
		require.Len(t, jobs, n)
		batches := s.CreationBatches() - before
		require.Less(t, batches, int64(n), "creations waiting together went in together")
		t.Logf("%d creations in %d batches", n, batches)
	})
}

// TestARefusedCreationDoesNotTakeItsBatchDown: a creation the database
// refuses (its user is gone) aborts the transaction it shares; the others
// are sent again on their own, each created once.
func TestARefusedCreationDoesNotTakeItsBatchDown(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ok := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP}
		gone := ok
		gone.UserID = uuid.NewString()
		jobs, errs := s.CreateTogether([]store.NewJob{ok, gone, ok})
		require.NoError(t, errs[0])
		require.Error(t, errs[1], "no such user")
		require.NoError(t, errs[2])
		require.NotEqual(t, jobs[0].ID, jobs[2].ID)
		listed, _, err := s.ListJobs(context.Background(), u.ID, 10, "")
		require.NoError(t, err)
		require.Len(t, listed, 2, "the batch's first creation was rolled back, then created once")
	})
}
