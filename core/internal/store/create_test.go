package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestOneStatementCreatesOnlyWhatNeedsNoDecision: on PostgreSQL a user
// without a quota gets a job from the single statement, with a new key too;
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
		require.Equal(t, pg, ok, "a user without a quota: one statement on PostgreSQL")
		if !ok {
			_, err = s.CreateJob(ctx, plain)
			require.NoError(t, err)
		}

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
