package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// Retention, blob deletion, backups and webhook bookkeeping, on both drivers
// (notify and retention run these on the single box too).

// TestExpireTranscriptsKeepsTheJob: a finished job's segments go, the job
// stays saying so, once; a running job's stay. (On SQLite this once failed:
// it was one statement with a DELETE inside a WITH.)
func TestExpireTranscriptsKeepsTheJob(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		done := runJob(t, s, u, time.Second)
		running := toTranscribing(t, s, u)
		_, err := s.PutSegments(ctx, running.ID, running.Epoch, []job.Segment{seg(0)}, 0.5)
		require.NoError(t, err)

		n, err := s.ExpireTranscripts(ctx, time.Now().Add(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		got, err := s.GetJob(ctx, u.ID, done.ID)
		require.NoError(t, err)
		require.True(t, got.TranscriptExpired)
		require.Equal(t, job.StatusSucceeded, got.Status)
		segs, err := s.Segments(ctx, done.ID, done.Epoch, -1)
		require.NoError(t, err)
		require.Empty(t, segs)
		segs, err = s.Segments(ctx, running.ID, running.Epoch, -1)
		require.NoError(t, err)
		require.Len(t, segs, 1, "a running job's transcript stays")

		n, err = s.ExpireTranscripts(ctx, time.Now().Add(time.Hour), 10)
		require.NoError(t, err)
		require.Zero(t, n, "expired once")
	})
}

// TestExpireJobsDeletesThemAndQueuesTheirAudio: a finished job goes with
// its audio queued for deletion; noting the deletion takes it off the queue,
// unless the queue entry is newer than the one deleted (the key was queued
// again meanwhile).
func TestExpireJobsDeletesThemAndQueuesTheirAudio(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		done := runJob(t, s, u, time.Second)
		running := toTranscribing(t, s, u)

		n, err := s.ExpireJobs(ctx, time.Now().Add(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = s.GetJob(ctx, u.ID, done.ID)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.GetJob(ctx, u.ID, running.ID)
		require.NoError(t, err)

		pending, err := s.PendingBlobDeletions(ctx, 10)
		require.NoError(t, err)
		require.Len(t, pending, 1)
		d := pending[0]
		require.Equal(t, "audio/"+done.ID+".wav", d.Key)

		stale := d
		stale.RequestedAt = d.RequestedAt.Add(-time.Second)
		require.NoError(t, s.BlobDeleted(ctx, stale, false))
		pending, err = s.PendingBlobDeletions(ctx, 10)
		require.NoError(t, err)
		require.Len(t, pending, 1, "an older queueing's deletion leaves the newer one")

		require.NoError(t, s.BlobDeleted(ctx, d, false))
		pending, err = s.PendingBlobDeletions(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, pending)
	})
}

// TestAKeptBlobLeavesTheQueue: a blob stored again after it was queued is
// kept, and its entry goes.
func TestAKeptBlobLeavesTheQueue(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()
		ds, err := s.ForgetUpload(ctx, "uploads/x.ogg")
		require.NoError(t, err)
		require.Len(t, ds, 1)
		_, pendingBefore, err := s.UploadState(ctx, "uploads/x.ogg")
		require.NoError(t, err)
		require.True(t, pendingBefore)
		require.NoError(t, s.BlobDeleted(ctx, ds[0], true))
		_, pendingAfter, err := s.UploadState(ctx, "uploads/x.ogg")
		require.NoError(t, err)
		require.False(t, pendingAfter)
		pending, err := s.PendingBlobDeletions(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, pending)
	})
}

// TestBackupHoldsOffBlobDeletions: deleters share the lock, a backup takes
// it alone; while it holds it no deleter may start.
func TestBackupHoldsOffBlobDeletions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()
		r1, ok, err := s.AllowBlobDeletions(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		r2, ok, err := s.AllowBlobDeletions(ctx)
		require.NoError(t, err)
		require.True(t, ok, "deleters share")
		r1()
		r2()

		hold, err := s.HoldForBackup(ctx)
		require.NoError(t, err)
		_, ok, err = s.AllowBlobDeletions(ctx)
		require.NoError(t, err)
		require.False(t, ok, "a backup is running")
		hold()
		// PostgreSQL frees a session's locks when its backend has seen the
		// connection close, a moment after release returns.
		require.Eventually(t, func() bool {
			r, ok, err := s.AllowBlobDeletions(ctx)
			if err != nil || !ok {
				return false
			}
			r()
			return true
		}, 10*time.Second, 10*time.Millisecond, "deletions resume after the backup")
	})
}

// TestRecordSweepKeepsWhatAPassDid: each retention pass leaves a row.
func TestRecordSweepKeepsWhatAPassDid(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		e := open(t)
		ctx := context.Background()
		cutoff := time.Date(2024, 5, 1, 12, 30, 0, 123456000, time.UTC)
		require.NoError(t, e.Store.RecordSweep(ctx, store.Sweep{Cutoff: cutoff, Audio: 1, Transcripts: 2, Jobs: 3, Blobs: 4}))
		var got store.Sweep
		var at time.Time
		require.NoError(t, e.DB.QueryRow(ctx, `SELECT at, cutoff, audio, transcripts, jobs, blobs FROM sweeps`).
			Scan(&at, &got.Cutoff, &got.Audio, &got.Transcripts, &got.Jobs, &got.Blobs))
		require.True(t, cutoff.Equal(got.Cutoff), "%v != %v", cutoff, got.Cutoff)
		got.Cutoff = cutoff
		require.Equal(t, store.Sweep{Cutoff: cutoff, Audio: 1, Transcripts: 2, Jobs: 3, Blobs: 4}, got)
		require.False(t, at.IsZero())
	})
}

// TestNotificationDeliveryIsLoggedPerAttempt: a finished job notifies the
// user's webhook and email; each attempt is logged, a retry keeps it
// pending, a postponement gives the attempt back, success delivers it and
// giving up fails it. A job's notifications are shown without the secret.
func TestNotificationDeliveryIsLoggedPerAttempt(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		_, err := s.UpdateAccount(ctx, "test", u.ID, store.AccountPatch{
			WebhookURL: new("https://hooks.example/ytcaption"), Email: new("alice@example.com")})
		require.NoError(t, err)
		j := runJob(t, s, u, time.Second)
		claimed, err := s.ClaimNotifications(ctx, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, claimed, 2)
		byChannel := map[string]store.Notification{}
		for _, n := range claimed {
			byChannel[n.Channel] = n
		}
		hook, mail := byChannel["webhook"], byChannel["email"]

		require.NoError(t, s.NotificationResult(ctx, hook.ID, store.DeliveryAttempt{StatusCode: 503, Error: "503 Service Unavailable", Duration: 40 * time.Millisecond}, time.Hour))
		require.NoError(t, s.PostponeNotification(ctx, hook.ID, 2*time.Hour))
		require.NoError(t, s.NotificationResult(ctx, mail.ID, store.DeliveryAttempt{Error: "smtp: connection refused"}, 0))

		// (By creation, then channel: on PostgreSQL the trigger's rows share
		// the transaction's now() and come email first; SQLite's now() is the
		// clock's, so they come as the trigger made them.)
		shown := func() map[string]store.Notification {
			t.Helper()
			ns, err := s.JobNotifications(ctx, j.ID)
			require.NoError(t, err)
			require.Len(t, ns, 2)
			out := map[string]store.Notification{}
			for _, n := range ns {
				require.Empty(t, n.WebhookSecret, "never shown")
				out[n.Channel] = n
			}
			return out
		}
		ns := shown()
		m := ns["email"]
		require.Equal(t, "failed", m.State)
		require.Len(t, m.Log, 1)
		require.Equal(t, "smtp: connection refused", m.Log[0].Error)
		w := ns["webhook"]
		require.Equal(t, "pending", w.State)
		require.Zero(t, w.Attempts, "the postponed attempt was given back")
		require.True(t, w.NextAttemptAt.After(time.Now().Add(90*time.Minute)), "postponed by two hours: %v", w.NextAttemptAt)
		require.Len(t, w.Log, 1)
		require.Equal(t, 503, w.Log[0].StatusCode)
		require.Equal(t, 40*time.Millisecond, w.Log[0].Duration)

		require.NoError(t, s.NotificationResult(ctx, hook.ID, store.DeliveryAttempt{StatusCode: 204, Duration: 5 * time.Millisecond}, 0))
		w = shown()["webhook"]
		require.Equal(t, "delivered", w.State)
		require.Len(t, w.Log, 2)
		require.Equal(t, 204, w.Log[1].StatusCode, "the log in order")

		none, err := s.JobNotifications(ctx, "not-a-uuid")
		require.NoError(t, err)
		require.Empty(t, none)
	})
}
