package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestCompleteAttemptFencesAndSettlesOnce: the completion statement finishes
// only the holder's epoch — a stale epoch, on the fast path (every segment
// stored) and the slow one (a missing segment), is refused and settles
// nothing — and the one that finishes writes the usage ledger and each
// outbox row exactly once, however often the holder repeats it. It says
// what the caller would otherwise read the job again for.
func TestCompleteAttemptFencesAndSettlesOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		hook, email := "https://hooks.example.com/x", "alice@example.com"
		_, err := s.UpdateAccount(ctx, "test", u.ID, store.AccountPatch{WebhookURL: &hook, Email: &email})
		require.NoError(t, err)

		old := toTranscribing(t, s, u)
		_, err = s.Release(ctx, old.ID, old.Epoch, 0)
		require.NoError(t, err)
		cur, ok, err := s.ClaimReady(ctx, "node-2", sphinx, lease, 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, old.Epoch+1, cur.Epoch)

		_, err = s.CompleteAttempt(ctx, old.ID, old.Epoch, "en", 0)
		require.ErrorIs(t, err, job.ErrLeaseLost, "a stale epoch cannot complete (fast path)")
		_, err = s.PutSegments(ctx, cur.ID, cur.Epoch, []job.Segment{seg(0)}, -1)
		require.NoError(t, err)
		_, err = s.CompleteAttempt(ctx, old.ID, old.Epoch, "en", 1)
		require.ErrorIs(t, err, job.ErrLeaseLost, "a stale epoch cannot complete (slow path)")
		usage, err := s.GetUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Zero(t, usage.UsedMS, "a refused completion settles nothing")
		n, err := s.JobNotifications(ctx, cur.ID)
		require.NoError(t, err)
		require.Empty(t, n)

		c, err := s.CompleteAttempt(ctx, cur.ID, cur.Epoch, "en", 1)
		require.NoError(t, err)
		require.True(t, c.Done)
		require.Empty(t, c.ParentID, "a job of its own has no parent to stitch")
		require.GreaterOrEqual(t, c.Took, time.Duration(0))
		for range 2 {
			again, err := s.CompleteAttempt(ctx, cur.ID, cur.Epoch, "en", 1)
			require.NoError(t, err, "the holder may repeat its completion")
			require.False(t, again.Done, "only the first call finished the job")
		}
		_, err = s.CompleteAttempt(ctx, old.ID, old.Epoch, "en", 1)
		require.ErrorIs(t, err, job.ErrLeaseLost, "nor after the job succeeded")

		got, err := s.GetJob(ctx, u.ID, cur.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)
		require.Equal(t, got.FinishedAt.Sub(got.TranscribingAt), c.Took, "the stage's time, without reading the job again")
		usage, err = s.GetUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(7100), usage.UsedMS, "one ledger row: the job's 7.1 s")
		n, err = s.JobNotifications(ctx, cur.ID)
		require.NoError(t, err)
		require.Len(t, n, 2, "one webhook and one email")
		require.ElementsMatch(t, []string{"webhook", "email"}, []string{n[0].Channel, n[1].Channel})
	})
}

// TestCompleteAndClaimReadyClaimsOnlyAfterTheCompletionStands:
// complete-and-next's claim takes the next job in the completion's
// transaction, and nothing when the completion is refused — a stale epoch,
// segments missing — so a refused node never walks off with more work. A
// repeated completion still claims; with nothing ready the completion stands
// alone.
func TestCompleteAndClaimReadyClaimsOnlyAfterTheCompletionStands(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		cur := toTranscribing(t, s, u)
		waiting := toReady(t, s, u)

		_, _, claimed, err := s.CompleteAndClaimReady(ctx, cur.ID, cur.Epoch-1, "en", 0, "node-1", sphinx, lease, 0)
		require.ErrorIs(t, err, job.ErrLeaseLost, "a stale epoch cannot complete")
		require.False(t, claimed)
		_, _, claimed, err = s.CompleteAndClaimReady(ctx, cur.ID, cur.Epoch, "en", 1, "node-1", sphinx, lease, 0)
		require.ErrorIs(t, err, job.ErrConflict, "a segment announced but not stored")
		require.False(t, claimed)
		got, err := s.GetJob(ctx, u.ID, waiting.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusReady, got.Status, "a refused completion claimed nothing")

		c, next, claimed, err := s.CompleteAndClaimReady(ctx, cur.ID, cur.Epoch, "en", 0, "node-1", sphinx, lease, 0)
		require.NoError(t, err)
		require.True(t, c.Done)
		require.True(t, claimed)
		require.Equal(t, waiting.ID, next.ID)
		require.Equal(t, job.StatusTranscribing, next.Status)
		require.Equal(t, "node-1", next.LeaseOwner)
		got, err = s.GetJob(ctx, u.ID, cur.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)

		third := toReady(t, s, u)
		again, next2, claimed, err := s.CompleteAndClaimReady(ctx, cur.ID, cur.Epoch, "en", 0, "node-1", sphinx, lease, 0)
		require.NoError(t, err, "the holder may repeat its completion")
		require.False(t, again.Done, "only the first call finished the job")
		require.True(t, claimed, "a repeated completion still asks for the next job")
		require.Equal(t, third.ID, next2.ID)

		c, _, claimed, err = s.CompleteAndClaimReady(ctx, next.ID, next.Epoch, "en", 0, "node-1", sphinx, lease, 0)
		require.NoError(t, err)
		require.True(t, c.Done)
		require.False(t, claimed, "nothing is ready")
		usage, err := s.GetUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(2*7100), usage.UsedMS, "each completion settled once")
	})
}
