package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// tryCreate creates a job for u, or says why not.
func tryCreate(s *store.Store, u store.User) error {
	_, err := s.CreateJob(context.Background(), store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP})
	return err
}

// runJob takes a new job of u's through every stage with audio of duration d.
func runJob(t *testing.T, s *store.Store, u store.User, d time.Duration) job.Job {
	t.Helper()
	ctx := context.Background()
	toReadyWith(t, s, u, d)
	c, ok, err := s.ClaimReady(ctx, "node-1", sphinx, lease, 0)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = s.PutSegments(ctx, c.ID, c.Epoch, []job.Segment{seg(0)}, 1)
	require.NoError(t, err)
	done, err := s.Complete(ctx, c.ID, c.Epoch, "en", 1)
	require.NoError(t, err)
	require.True(t, done)
	return c
}

func TestConcurrentJobsQuotaRefusesAtTheLimitAndFreesOnFinish(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "small", MaxConcurrent: 2}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "small"))

		first := create(t, s, u)
		create(t, s, u)
		err := tryCreate(s, u)
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err))
		require.ErrorContains(t, err, "2 of 2 concurrent jobs")

		_, err = s.CancelJob(ctx, u.ID, first.ID)
		require.NoError(t, err)
		create(t, s, u) // a finished job frees its slot

		// A per-user override beats the plan: 0 is unlimited.
		_, err = s.UpdateAccount(ctx, "test", u.ID, store.AccountPatch{MaxConcurrent: new(0)})
		require.NoError(t, err)
		create(t, s, u)
		usage, err := s.GetUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, 3, usage.Active)
		require.Equal(t, store.Unlimited, usage.MaxConcurrent)
	})
}

func TestConcurrentCreationsCannotBothTakeTheLastSlot(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "one", MaxConcurrent: 1}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "one"))
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				errs[i] = tryCreate(s, u)
			})
		}
		wg.Wait()
		created := 0
		for _, err := range errs {
			if err == nil {
				created++
			} else {
				require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err))
			}
		}
		require.Equal(t, 1, created, "the user's row lock serialises the check and the insert")
	})
}

func TestMonthlyMinutesSettleFromTheRealDurationAndRefuseWhenUsedUp(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "minute", MonthlyMinutes: 1}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "minute"))

		first := runJob(t, s, u, 42*time.Second)
		usage, err := s.GetUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(42_000), usage.UsedMS, "settled with the job's real duration")
		require.Equal(t, int64(18_000), usage.RemainingMS())
		now := time.Now().UTC()
		require.Equal(t, time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC), usage.ResetsAt.UTC(), "months are UTC months")

		// Completing again (a node's retry) settles nothing more.
		_, err = s.Complete(ctx, first.ID, first.Epoch, "en", 1)
		require.NoError(t, err)
		second := runJob(t, s, u, 30*time.Second) // allowed: 18 s remained
		usage, err = s.GetUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(72_000), usage.UsedMS)
		require.Equal(t, int64(0), usage.RemainingMS())

		err = tryCreate(s, u)
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err))
		require.ErrorContains(t, err, "1 audio minutes are used up (1.2 used")
		require.ErrorContains(t, err, "resets at")

		// Purging a job does not refund it; the report sums the ledger.
		_, err = s.PurgeJob(ctx, u.ID, second.ID)
		require.NoError(t, err)
		rows, err := s.UsageReport(ctx, now, now)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		require.Equal(t, store.UsageRow{UserID: u.ID, UserName: "alice", Month: time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC), Jobs: 2, AudioMS: 72_000},
			rows[0])

		// Raising the user's own limit lets them go on.
		_, err = s.UpdateAccount(ctx, "test", u.ID, store.AccountPatch{MonthlyMinutes: new(5)})
		require.NoError(t, err)
		create(t, s, u)
	})
}

func TestFailedAndCancelledJobsAreNotCharged(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := toTranscribing(t, s, u)
		_, err := s.Fail(ctx, j.ID, j.Epoch, &job.Error{Code: job.CodeEngineFailed, Message: "boom"})
		require.NoError(t, err)
		c := create(t, s, u)
		_, err = s.CancelJob(ctx, u.ID, c.ID)
		require.NoError(t, err)
		usage, err := s.GetUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(0), usage.UsedMS)
	})
}

// TestListUsageGivesEachUserWhatGetUsageGives: the users page's one query
// gives every user, with or without a quota, jobs or ledger rows, exactly
// what that user's own usage query gives.
func TestListUsageGivesEachUserWhatGetUsageGives(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, alice := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "small", MonthlyMinutes: 10, MaxConcurrent: 3}))
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "big", MaxConcurrent: 4}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "small"))
		bob, err := s.CreateUser(ctx, "bob", store.RoleUser, store.DefaultPlan)
		require.NoError(t, err)
		_, err = s.UpdateAccount(ctx, "test", bob.ID, store.AccountPatch{MonthlyMinutes: new(5)})
		require.NoError(t, err)
		carol, err := s.CreateUser(ctx, "carol", store.RoleUser, store.DefaultPlan) // no jobs
		require.NoError(t, err)
		dave, err := s.CreateUser(ctx, "dave", store.RoleUser, "big")
		require.NoError(t, err)

		// Claims take the oldest job of anybody's: every job that is claimed
		// is created while no other waits.
		runJob(t, s, alice, 42*time.Second)
		runJob(t, s, bob, 30*time.Second)
		toTranscribing(t, s, dave)
		toReadyWith(t, s, alice, 20*time.Second)
		create(t, s, bob)
		create(t, s, bob)

		all, err := s.ListUsage(ctx)
		require.NoError(t, err)
		require.Len(t, all, 4)
		// What sets the users apart, so that figures given to the wrong
		// user, or summed, cannot pass.
		want := map[string]store.Usage{
			alice.ID: {MonthlyMinutes: 10, MaxConcurrent: 3, UsedMS: 42_000, PendingMS: 20_000, Active: 1},
			bob.ID:   {MonthlyMinutes: 5, UsedMS: 30_000, Active: 2},
			carol.ID: {},
			dave.ID:  {MaxConcurrent: 4, PendingMS: 7_100, Active: 1},
		}
		for id, w := range want {
			one, err := s.GetUsage(ctx, id)
			require.NoError(t, err)
			require.Equal(t, one, all[id], "user %s", id)
			w.ResetsAt = one.ResetsAt
			require.Equal(t, w, one, "user %s", id)
		}
	})
}
