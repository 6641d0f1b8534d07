package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

func TestKeysIssueRotateRevokeAndAreAudited(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		k, secret, err := s.IssueKey(ctx, "admin:root", u.ID, "laptop")
		require.NoError(t, err)
		require.Equal(t, secret[:8], k.Prefix, "the prefix is shown, the rest never again")
		got, err := s.Authenticate(ctx, secret)
		require.NoError(t, err)
		require.Equal(t, u.ID, got.ID)

		rotated, newSecret, err := s.RotateKey(ctx, "admin:root", k.ID)
		require.NoError(t, err)
		require.Equal(t, "laptop", rotated.Name)
		_, err = s.Authenticate(ctx, secret)
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err), "the rotated key is dead")
		_, err = s.Authenticate(ctx, newSecret)
		require.NoError(t, err)

		_, _, err = s.RotateKey(ctx, "admin:root", k.ID)
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "a revoked key has no second successor")
		revoked, err := s.RevokeKey(ctx, "admin:root", rotated.ID)
		require.NoError(t, err)
		require.NotNil(t, revoked.RevokedAt)
		again, err := s.RevokeKey(ctx, "admin:root", rotated.ID)
		require.NoError(t, err, "revoking twice is harmless")
		require.Equal(t, revoked.RevokedAt, again.RevokedAt, "and keeps the first time")
		_, err = s.Authenticate(ctx, newSecret)
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err))

		keys, err := s.ListKeys(ctx, u.ID)
		require.NoError(t, err)
		require.Len(t, keys, 2)
		_, err = s.RevokeKey(ctx, "admin:root", "not-a-uuid")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, _, err = s.IssueKey(ctx, "admin:root", "00000000-0000-0000-0000-000000000000", "x")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))

		log, err := s.ListAudit(ctx, time.Time{}, 10)
		require.NoError(t, err)
		var actions []string
		for _, e := range log {
			require.Equal(t, "admin:root", e.Actor)
			actions = append(actions, e.Action)
		}
		require.Equal(t, []string{"revoke_key", "revoke_key", "rotate_key", "create_key"}, actions, "every action, newest first")

		other, err := s.EnsureUser(ctx, "keys-other", store.RoleUser)
		require.NoError(t, err)
		_, _, err = s.IssueKey(ctx, "admin:root", other.ID, "phone")
		require.NoError(t, err)
		all, err := s.ListKeys(ctx, "")
		require.NoError(t, err)
		owners := map[string]int{}
		for _, k := range all {
			owners[k.UserID]++
		}
		require.Equal(t, 2, owners[u.ID], "no user id: every user's keys")
		require.Equal(t, 1, owners[other.ID])
		none, err := s.ListKeys(ctx, "not-a-uuid")
		require.NoError(t, err)
		require.Empty(t, none, "a malformed id is no user, not every user")
	})
}

func TestWebhookSecretRotates(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		before, err := s.GetAccount(ctx, u.ID)
		require.NoError(t, err)
		require.Regexp(t, `^whsec_[A-Za-z0-9+/]{43}=$`, before.WebhookSecret, "32 bytes, base64")
		after, err := s.UpdateAccount(ctx, "admin:root", u.ID, store.AccountPatch{RotateWebhookSecret: true})
		require.NoError(t, err)
		require.Regexp(t, `^whsec_[A-Za-z0-9+/]{43}=$`, after.WebhookSecret)
		require.NotEqual(t, before.WebhookSecret, after.WebhookSecret)
		same, err := s.UpdateAccount(ctx, "admin:root", u.ID, store.AccountPatch{Email: new("a@example.com")})
		require.NoError(t, err)
		require.Equal(t, after.WebhookSecret, same.WebhookSecret, "other changes keep the secret")
	})
}

func TestRetryQueuesOnlyAFailedJobAgain(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := toTranscribing(t, s, u)
		_, err := s.RetryJob(ctx, "admin:root", j.ID)
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "a running job is not retried")
		_, err = s.Fail(ctx, j.ID, j.Epoch, &job.Error{Code: job.CodeEngineFailed, Message: "boom"})
		require.NoError(t, err)
		media := toTranscribing(t, s, u)
		_, err = s.Fail(ctx, media.ID, media.Epoch, &job.Error{Code: job.CodeNotMedia, Message: "no audio stream"})
		require.NoError(t, err)
		_, err = s.RetryJob(ctx, "admin:root", media.ID)
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "a failure of the media's own is not retried")
		still, err := s.GetJob(ctx, "", media.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusFailed, still.Status)
		require.Equal(t, job.CodeNotMedia, still.ErrorCode)
		again, err := s.RetryJob(ctx, "admin:root", j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusQueued, again.Status)
		require.Empty(t, again.ErrorCode)
		require.Zero(t, again.Attempt)
		attempts, err := s.Attempts(ctx, j.ID)
		require.NoError(t, err)
		require.NotEmpty(t, attempts, "the failed attempt stays in the history")
	})
}
