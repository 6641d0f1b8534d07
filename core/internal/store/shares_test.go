package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/clocktest"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/sharetoken"
)

func TestShareLinksOpenUntilTheyExpireOrAreRevoked(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		clock := clocktest.New()
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		share := func(userID, jobID string, ttl time.Duration) (store.Share, string, error) {
			tok, hash := sharetoken.New()
			sh, err := s.CreateShare(ctx, store.NewShare{UserID: userID, JobID: jobID, TokenHash: hash, Now: clock.Now(), ExpiresAt: clock.Now().Add(ttl)})
			return sh, tok, err
		}

		j := succeeded(t, s, u)
		failed := toTranscribing(t, s, u)
		_, err = s.Fail(ctx, failed.ID, failed.Epoch, &job.Error{Code: job.CodeEngineFailed, Message: "boom"})
		require.NoError(t, err)
		_, _, err = share(u.ID, failed.ID, time.Hour)
		require.Equal(t, errcode.NotReady, job.CodeOf(err), "a failed job has no transcript, as reading it says")
		running := create(t, s, u)
		_, _, err = share(u.ID, running.ID, time.Hour)
		require.Equal(t, errcode.JobNotFinished, job.CodeOf(err))
		_, _, err = share(bob.ID, j.ID, time.Hour)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err), "another user's job")
		_, _, err = share(u.ID, "not-a-uuid", time.Hour)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))

		two := 2
		_, err = s.CreateShare(ctx, store.NewShare{UserID: u.ID, JobID: j.ID, TokenHash: sharetoken.Hash("x"), Revision: &two,
			Now: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)})
		require.Equal(t, errcode.RevisionNotFound, job.CodeOf(err), "a revision the job does not have yet")
		for base := range two {
			_, err := s.SaveRevision(ctx, u.ID, j.ID, base, []job.Segment{{StartMS: 0, EndMS: 1000, Text: "An edit"}}, nil)
			require.NoError(t, err)
		}
		sh, tok, err := share(u.ID, j.ID, time.Hour)
		require.NoError(t, err)
		require.Equal(t, j.ID, sh.JobID)
		require.Nil(t, sh.Revision)
		require.True(t, sh.ExpiresAt.Equal(clock.Now().Add(time.Hour)))
		clock.Advance(time.Second)
		pinned, err := s.CreateShare(ctx, store.NewShare{UserID: u.ID, JobID: j.ID, TokenHash: sharetoken.Hash("x"), Revision: &two,
			Now: clock.Now(), ExpiresAt: clock.Now().Add(3 * time.Hour)})
		require.NoError(t, err)
		require.Equal(t, 2, *pinned.Revision)

		got, err := s.ResolveShare(ctx, sharetoken.Hash(tok), clock.Now())
		require.NoError(t, err)
		require.Equal(t, sh.ID, got.ID)
		require.Equal(t, u.ID, got.UserID)
		_, err = s.ResolveShare(ctx, sharetoken.Hash(tok+"x"), clock.Now())
		require.Equal(t, errcode.ShareNotFound, job.CodeOf(err), "unknown")

		list, err := s.ListShares(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, pinned.ID, list[0].ID, "newest first")
		_, err = s.ListShares(ctx, bob.ID, j.ID)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err), "another user's job")
		require.Equal(t, job.CodeNotFound, job.CodeOf(s.RevokeShare(ctx, bob.ID, j.ID, sh.ID, clock.Now())), "another user's link")
		require.Equal(t, job.CodeNotFound, job.CodeOf(s.RevokeShare(ctx, u.ID, running.ID, sh.ID, clock.Now())), "another job's link")
		require.Equal(t, job.CodeNotFound, job.CodeOf(s.RevokeShare(ctx, u.ID, j.ID, "nope", clock.Now())))
		_, err = s.ResolveShare(ctx, sharetoken.Hash(tok), clock.Now())
		require.NoError(t, err, "refused revocations revoke nothing")

		clock.Advance(time.Hour - time.Second)
		_, err = s.ResolveShare(ctx, sharetoken.Hash(tok), clock.Now())
		require.Equal(t, errcode.ShareNotFound, job.CodeOf(err), "expired at its expiry")
		_, err = s.ResolveShare(ctx, sharetoken.Hash("x"), clock.Now())
		require.NoError(t, err, "the other link lives on")

		require.NoError(t, s.RevokeShare(ctx, u.ID, j.ID, pinned.ID, clock.Now()))
		_, err = s.ResolveShare(ctx, sharetoken.Hash("x"), clock.Now())
		require.Equal(t, errcode.ShareNotFound, job.CodeOf(err), "revoked")
		revokedAt := clock.Now()
		clock.Advance(time.Minute)
		require.NoError(t, s.RevokeShare(ctx, u.ID, j.ID, pinned.ID, clock.Now()), "revoking again")
		list, err = s.ListShares(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.True(t, list[0].RevokedAt.Equal(revokedAt), "the first revocation's time stays")
		require.True(t, list[1].RevokedAt.IsZero(), "expired, not revoked")
	})
}

func TestAJobsShareLinksAreBoundedAndGoWithIt(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		clock := clocktest.New()
		j := succeeded(t, s, u)
		var first store.Share
		var firstTok string
		for i := range store.MaxLiveShares {
			tok, hash := sharetoken.New()
			sh, err := s.CreateShare(ctx, store.NewShare{UserID: u.ID, JobID: j.ID, TokenHash: hash, Now: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)})
			require.NoError(t, err)
			if i == 0 {
				first, firstTok = sh, tok
			}
		}
		_, hash := sharetoken.New()
		_, err := s.CreateShare(ctx, store.NewShare{UserID: u.ID, JobID: j.ID, TokenHash: hash, Now: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)})
		require.Equal(t, errcode.TooManyShares, job.CodeOf(err))
		require.NoError(t, s.RevokeShare(ctx, u.ID, j.ID, first.ID, clock.Now()))
		_, err = s.CreateShare(ctx, store.NewShare{UserID: u.ID, JobID: j.ID, TokenHash: hash, Now: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)})
		require.NoError(t, err, "a revoked link frees its place")

		// Expired links free theirs too; dead links beyond the newest
		// kept are deleted when another is made.
		clock.Advance(time.Hour)
		for range store.MaxLiveShares + 5 {
			_, hash := sharetoken.New()
			_, err := s.CreateShare(ctx, store.NewShare{UserID: u.ID, JobID: j.ID, TokenHash: hash, Now: clock.Now(), ExpiresAt: clock.Now().Add(time.Second)})
			require.NoError(t, err)
			clock.Advance(time.Second)
		}
		lastTok, hash := sharetoken.New()
		_, err = s.CreateShare(ctx, store.NewShare{UserID: u.ID, JobID: j.ID, TokenHash: hash, Now: clock.Now(), ExpiresAt: clock.Now().Add(time.Hour)})
		require.NoError(t, err)
		list, err := s.ListShares(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.LessOrEqual(t, len(list), 2*store.MaxLiveShares)

		_, err = s.ResolveShare(ctx, sharetoken.Hash(lastTok), clock.Now())
		require.NoError(t, err)
		_, err = s.ResolveShare(ctx, sharetoken.Hash(firstTok), clock.Now())
		require.Equal(t, errcode.ShareNotFound, job.CodeOf(err), "revoked")
		_, err = s.PurgeJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		_, err = s.ResolveShare(ctx, sharetoken.Hash(lastTok), clock.Now())
		require.Equal(t, errcode.ShareNotFound, job.CodeOf(err), "the job's links went with it")
	})
}
