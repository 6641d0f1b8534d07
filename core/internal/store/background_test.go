package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/store"
)

// The store's background work — webhook delivery and retention — runs on
// both drivers. The single box once ran neither: SQLite refused the claim's
// RETURNING of a joined table and had no bool_and, and only logged it.

// TestWebhookNotificationsAreClaimedWithTheUsersSecret: a finished job of a
// user with a webhook is claimed once, to the user's URL, carrying the
// secret that signs it.
func TestWebhookNotificationsAreClaimedWithTheUsersSecret(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		acct, err := s.UpdateAccount(ctx, "test", u.ID, store.AccountPatch{WebhookURL: new("https://hooks.example/ytcaption")})
		require.NoError(t, err)
		j := runJob(t, s, u, 5*time.Second)

		ns, err := s.ClaimNotifications(ctx, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, ns, 1)
		require.Equal(t, j.ID, ns[0].JobID)
		require.Equal(t, "https://hooks.example/ytcaption", ns[0].Target)
		require.Equal(t, "job.succeeded", ns[0].Event)
		require.Equal(t, 1, ns[0].Attempts)
		require.NotEmpty(t, acct.WebhookSecret)
		require.Equal(t, acct.WebhookSecret, ns[0].WebhookSecret)

		again, err := s.ClaimNotifications(ctx, 10, time.Minute)
		require.NoError(t, err)
		require.Empty(t, again, "held for a minute after the claim")
	})
}

// TestExpireAudioQueuesOnlyFinishedJobsAudio: audio of a job finished
// before the cutoff is queued for deletion once; a running job's is kept.
func TestExpireAudioQueuesOnlyFinishedJobsAudio(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		done := runJob(t, s, u, 5*time.Second)
		running := toReadyWith(t, s, u, 5*time.Second)

		n, err := s.ExpireAudio(ctx, time.Now().Add(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		pending, err := s.PendingBlobDeletions(ctx, 10)
		require.NoError(t, err)
		require.Len(t, pending, 1)
		require.Equal(t, "audio/"+done.ID+".wav", pending[0].Key)
		require.NotEqual(t, "audio/"+running.ID+".wav", pending[0].Key)

		n, err = s.ExpireAudio(ctx, time.Now().Add(time.Hour), 10)
		require.NoError(t, err)
		require.Zero(t, n, "expired once")
	})
}
