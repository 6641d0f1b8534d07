package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestUploadsBelongToTheirOwnerAndExpire: an upload is recorded before its
// bytes, seen only by its owner, counts its bytes forward only, finishes with
// a blob key, and is listed for sweeping once its expiry passes.
func TestUploadsBelongToTheirOwnerAndExpire(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, alice := newStore(t)
		ctx := context.Background()
		bob, err := s.CreateUser(ctx, "bob", store.RoleUser, store.DefaultPlan)
		require.NoError(t, err)

		now := time.Now()
		id := uuid.NewString()
		u, err := s.CreateUpload(ctx, store.Upload{ID: id, UserID: alice.ID, Size: 1000, Filename: "lecture.m4a", ExpiresAt: now.Add(time.Hour)})
		require.NoError(t, err)
		require.Equal(t, id, u.ID)
		require.Equal(t, int64(1000), u.Size)
		require.Zero(t, u.Received)
		require.False(t, u.Finished())
		require.WithinDuration(t, now.Add(time.Hour), u.ExpiresAt, time.Second)

		_, err = s.GetUpload(ctx, bob.ID, id)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err), "another user's upload is not found")
		_, err = s.GetUpload(ctx, alice.ID, "not-a-uuid")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.GetUpload(ctx, alice.ID, uuid.NewString())
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))

		open, err := s.OpenUploadBytes(ctx, alice.ID, now)
		require.NoError(t, err)
		require.Equal(t, int64(1000), open)
		open, err = s.OpenUploadBytes(ctx, bob.ID, now)
		require.NoError(t, err)
		require.Zero(t, open, "per user")

		require.NoError(t, s.SetUploadProgress(ctx, id, 0, 600, []byte("state at 600")))
		require.ErrorIs(t, s.SetUploadProgress(ctx, id, 0, 300, []byte("stale")), store.ErrUploadMoved,
			"a writer that read the upload at 0 cannot record over the progress to 600")
		require.ErrorIs(t, s.SetUploadProgress(ctx, id, 600, 5000, nil), store.ErrUploadMoved, "past the size")
		got, err := s.GetUpload(ctx, alice.ID, id)
		require.NoError(t, err)
		require.Equal(t, int64(600), got.Received)
		require.Equal(t, []byte("state at 600"), got.HashState)

		// One upload's lock is exclusive while held, and another upload's is free.
		release, err := s.LockUpload(ctx, id)
		require.NoError(t, err)
		waiting, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err = s.LockUpload(waiting, id)
		cancel()
		require.Error(t, err, "the lock is held")
		other, err := s.LockUpload(ctx, uuid.NewString())
		require.NoError(t, err)
		other()
		release()
		again, err := s.LockUpload(ctx, id)
		require.NoError(t, err, "released")
		again()

		require.NoError(t, s.FinishUpload(ctx, id, "uploads/ab/abcdef"))
		require.ErrorIs(t, s.SetUploadProgress(ctx, id, 600, 700, nil), store.ErrUploadMoved, "finished")
		got, err = s.GetUpload(ctx, alice.ID, id)
		require.NoError(t, err)
		require.True(t, got.Finished())
		open, err = s.OpenUploadBytes(ctx, alice.ID, now)
		require.NoError(t, err)
		require.Zero(t, open, "a finished upload claims no more disk")
		require.Equal(t, int64(1000), got.Received)
		require.Equal(t, "uploads/ab/abcdef", got.BlobKey)
		require.NotNil(t, got.FinishedAt)

		old := uuid.NewString()
		_, err = s.CreateUpload(ctx, store.Upload{ID: old, UserID: bob.ID, Size: 10, ExpiresAt: now.Add(-time.Minute)})
		require.NoError(t, err)
		open, err = s.OpenUploadBytes(ctx, bob.ID, now)
		require.NoError(t, err)
		require.Zero(t, open, "an expired upload claims nothing")
		expired, err := s.ExpiredUploads(ctx, now, 10)
		require.NoError(t, err)
		require.Len(t, expired, 1)
		require.Equal(t, old, expired[0].ID)
		expired, err = s.ExpiredUploads(ctx, now.Add(2*time.Hour), 10)
		require.NoError(t, err)
		require.Len(t, expired, 2)
		require.Equal(t, old, expired[0].ID, "the oldest first")

		require.NoError(t, s.DeleteUpload(ctx, old))
		require.NoError(t, s.DeleteUpload(ctx, old), "twice is fine")
		expired, err = s.ExpiredUploads(ctx, now, 10)
		require.NoError(t, err)
		require.Empty(t, expired)
	})
}
