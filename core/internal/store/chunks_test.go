package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// split makes a job the parent of two chunks (0–10 s and 10–18 s) and returns
// the parent and the claimed chunks in order.
func split(t *testing.T, s *store.Store, u store.User) (job.Job, []job.Job) {
	t.Helper()
	ctx := context.Background()
	p := create(t, s, u)
	c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.SplitIntoChunks(ctx, c.ID, c.Epoch, store.Media{Title: "long", AudioKey: "audio/all"},
		[]store.Chunk{{AudioKey: "audio/0", OffsetMS: 0, Duration: 10_000}, {AudioKey: "audio/1", OffsetMS: 10_000, Duration: 8_000}}))
	var chunks []job.Job
	for range 2 {
		ch, ok, err := s.ClaimReady(ctx, "node", sphinx, lease, 0)
		require.NoError(t, err)
		require.True(t, ok)
		chunks = append(chunks, ch)
	}
	if chunks[0].ChunkIndex > chunks[1].ChunkIndex {
		chunks[0], chunks[1] = chunks[1], chunks[0]
	}
	got, err := s.GetJob(ctx, u.ID, p.ID)
	require.NoError(t, err)
	return got, chunks
}

func transcribed(t *testing.T, s *store.Store, ch job.Job, segs ...job.Segment) {
	t.Helper()
	ctx := context.Background()
	_, err := s.PutSegments(ctx, ch.ID, ch.Epoch, segs, 1)
	require.NoError(t, err)
	done, err := s.Complete(ctx, ch.ID, ch.Epoch, "en", len(segs))
	require.NoError(t, err)
	require.True(t, done)
}

func TestChunksAreStitchedWithTheirOffsets(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		p, chunks := split(t, s, u)
		require.Equal(t, job.StatusTranscribing, p.Status)
		require.Equal(t, 2, p.Chunks)
		require.Equal(t, p.ID, chunks[1].ParentID)
		require.Equal(t, int64(10_000), chunks[1].ChunkOffsetMS)
		require.Equal(t, "audio/1", chunks[1].AudioKey)
		list, _, err := s.ListJobs(ctx, u.ID, 10, "")
		require.NoError(t, err)
		require.Len(t, list, 1, "chunks are not listed")

		transcribed(t, s, chunks[1], job.Segment{Seq: 0, StartMS: 500, EndMS: 9_000, Text: "late", // past the chunk's end: clamped
			Words: []job.Word{{StartMS: 500, EndMS: 900, Text: "late"}}})
		parent, done, err := s.FinishParent(ctx, chunks[1].ID)
		require.NoError(t, err)
		require.Equal(t, p.ID, parent)
		require.False(t, done)
		got, err := s.GetJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		require.InDelta(t, 8.0/18, got.Progress, 0.001, "the share of the audio done")

		_, err = s.PutSegments(ctx, chunks[0].ID, chunks[0].Epoch, []job.Segment{{Seq: 0, StartMS: 0, EndMS: 4_000, Text: "one"},
			{Seq: 1, StartMS: 4_000, EndMS: 9_990, Text: "two"}}, 1)
		require.NoError(t, err)
		c, err := s.CompleteAttempt(ctx, chunks[0].ID, chunks[0].Epoch, "en", 2)
		require.NoError(t, err)
		require.True(t, c.Done)
		require.Equal(t, p.ID, c.ParentID, "the completion names the parent to stitch")
		done, err = s.Stitch(ctx, c.ParentID)
		require.NoError(t, err)
		require.True(t, done)
		got, err = s.GetJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)
		require.Equal(t, job.FromSpeech, got.TranscribedFrom)
		segs, err := s.Segments(ctx, p.ID, got.Epoch, -1)
		require.NoError(t, err)
		require.Equal(t, []job.Segment{
			{Seq: 0, StartMS: 0, EndMS: 4_000, Text: "one"},
			{Seq: 1, StartMS: 4_000, EndMS: 9_990, Text: "two"},
			{Seq: 2, StartMS: 10_500, EndMS: 18_000, Text: "late", Words: []job.Word{{StartMS: 10_500, EndMS: 10_900, Text: "late"}}},
		}, segs)
	})
}

func TestAChunkThatFailsFailsTheWhole(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		p, chunks := split(t, s, u)
		_, err := s.Fail(ctx, chunks[0].ID, chunks[0].Epoch, &job.Error{Code: job.CodeEngineFailed, Message: "boom"})
		require.NoError(t, err)
		got, err := s.GetJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusFailed, got.Status)
		require.Equal(t, job.CodeEngineFailed, got.ErrorCode)
		sib, err := s.GetJob(ctx, u.ID, chunks[1].ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusCancelled, sib.Status)
		require.True(t, sib.CancelRequested, "its node is told to stop")

		// An admin's retry starts the whole over: the old chunks go with it.
		again, err := s.RetryJob(ctx, "admin:root", p.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusQueued, again.Status)
		require.Zero(t, again.Chunks)
		for _, ch := range chunks {
			_, err := s.GetJob(ctx, "", ch.ID)
			require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		}
	})
}

func TestCancellingTheWholeCancelsItsChunks(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		p, chunks := split(t, s, u)
		_, err := s.CancelJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		require.NoError(t, s.CancelChunks(ctx, p.ID))
		for _, ch := range chunks {
			got, err := s.GetJob(ctx, "", ch.ID)
			require.NoError(t, err)
			require.Equal(t, job.StatusCancelled, got.Status)
		}
	})
}

func TestTheRescuerStitchesWhatACrashLeftUnstitched(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		p, chunks := split(t, s, u)
		for _, ch := range chunks {
			transcribed(t, s, ch, job.Segment{Seq: 0, StartMS: 0, EndMS: 1_000, Text: "x"}) // no FinishParent: core died
		}
		done, err := s.FinishStitchable(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{p.ID}, done)
		got, err := s.GetJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)
		done, err = s.FinishStitchable(ctx)
		require.NoError(t, err)
		require.Empty(t, done, "once")
	})
}

func TestPurgeAndDeleteUserLeaveNothingOfTheirs(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		p, chunks := split(t, s, u)
		_, err := s.PurgeJob(ctx, u.ID, p.ID)
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "a running job is cancelled first")
		for _, ch := range chunks {
			transcribed(t, s, ch, job.Segment{Seq: 0, StartMS: 0, EndMS: 1_000, Text: "x"})
		}
		_, done, err := s.FinishParent(ctx, chunks[0].ID)
		require.NoError(t, err)
		require.True(t, done)
		queued, err := s.PurgeJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		for _, id := range []string{p.ID, chunks[0].ID, chunks[1].ID} {
			_, err := s.GetJob(ctx, u.ID, id)
			require.ErrorIs(t, err, job.ErrNotFound, "the job and its chunks are gone")
		}
		pending, err := s.PendingBlobDeletions(ctx, 10)
		require.NoError(t, err)
		var keys []string
		for _, d := range pending {
			keys = append(keys, d.Key)
		}
		require.ElementsMatch(t, []string{"audio/all", "audio/0", "audio/1"}, keys, "its audio is queued for deletion")
		require.ElementsMatch(t, pending, queued, "and returned, to be deleted at once")

		other := create(t, s, u)
		n, err := s.DeleteUser(ctx, "cli:test", "alice")
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = s.GetJob(ctx, "", other.ID)
		require.ErrorIs(t, err, job.ErrNotFound)
		_, err = s.UserID(ctx, "alice")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
	})
}
