package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// TestRevisionsAreACompareAndSet: a save from the latest revision adds the
// next one; of concurrent saves from one base exactly one wins, the rest
// are revision_conflict; revision 0 stays the machine's; another user's job
// is not found; an unfinished job's transcript is not editable.
func TestRevisionsAreACompareAndSet(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := succeeded(t, s, u)
		machine, err := s.RevisionSegments(ctx, j, 0)
		require.NoError(t, err)

		const n = 6
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.SaveRevision(ctx, u.ID, j.ID, 0, []job.Segment{{StartMS: int64(i), EndMS: 1000, Text: "edit"}}, nil)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				require.Equal(t, errcode.RevisionConflict, job.CodeOf(err), "%v", err)
			}
		}
		require.Equal(t, 1, won, "exactly one save from base 0 wins")

		names := map[string]string{"Speaker 1": "Alice"}
		segs := []job.Segment{{Seq: 0, StartMS: 0, EndMS: 500, Text: "hello", Speaker: "Speaker 1",
			Words: []job.Word{{StartMS: 0, EndMS: 500, Text: "hello", Speaker: "Speaker 1"}}}, {Seq: 1, StartMS: 600, EndMS: 900, Text: "again"}}
		r, err := s.SaveRevision(ctx, u.ID, j.ID, 1, segs, names)
		require.NoError(t, err)
		require.Equal(t, 2, r.Revision)
		require.Equal(t, 2, r.SegmentCount)
		require.False(t, r.CreatedAt.IsZero())

		j, err = s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, 2, j.Revision)
		require.Equal(t, names, j.SpeakerNames, "a save's names replace the job's")
		got, err := s.RevisionSegments(ctx, j, 2)
		require.NoError(t, err)
		require.Equal(t, segs, got)
		orig, err := s.RevisionSegments(ctx, j, 0)
		require.NoError(t, err)
		require.Equal(t, machine, orig, "revision 0 is never changed")
		_, err = s.RevisionSegments(ctx, j, 3)
		require.Equal(t, errcode.RevisionNotFound, job.CodeOf(err))

		_, err = s.SaveRevision(ctx, u.ID, j.ID, 2, segs, nil)
		require.NoError(t, err)
		j, err = s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, names, j.SpeakerNames, "a save without names keeps them")

		revs, err := s.ListRevisions(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Len(t, revs, 4)
		require.Equal(t, store.Revision{Revision: 0, CreatedAt: j.FinishedAt, SegmentCount: len(machine)}, revs[0])
		for i, r := range revs {
			require.Equal(t, i, r.Revision)
		}

		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		_, err = s.SaveRevision(ctx, bob.ID, j.ID, 3, segs, nil)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err), "another user's job")
		_, err = s.ListRevisions(ctx, bob.ID, j.ID)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.ListRevisions(ctx, u.ID, "not-a-uuid")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))

		failed := toTranscribing(t, s, u)
		_, err = s.Fail(ctx, failed.ID, failed.Epoch, &job.Error{Code: job.CodeEngineFailed, Message: "boom"})
		require.NoError(t, err)
		_, err = s.SaveRevision(ctx, u.ID, failed.ID, 0, segs, nil)
		require.Equal(t, errcode.NotReady, job.CodeOf(err), "a failed job has no transcript, as reading it says")
		_, err = s.ListRevisions(ctx, u.ID, failed.ID)
		require.Equal(t, errcode.NotReady, job.CodeOf(err))
		queued := create(t, s, u)
		_, err = s.SaveRevision(ctx, u.ID, queued.ID, 0, segs, nil)
		require.Equal(t, errcode.JobNotFinished, job.CodeOf(err))
	})
}

// TestRevisionsGoWithTheTranscript: retention that deletes a job's
// transcript deletes its revisions, and a purge deletes them with the job;
// a job that reuses an edited job's transcript from the cache gets the
// machine's transcript, never the other owner's edits.
func TestRevisionsGoWithTheTranscript(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		edited := succeeded(t, s, u)
		_, err := s.SaveRevision(ctx, u.ID, edited.ID, 0, []job.Segment{{StartMS: 0, EndMS: 900, Text: "alice's private edit"}}, nil)
		require.NoError(t, err)

		// Bob asks for the same media with the same options: a cache hit.
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		reuse := create(t, s, bob)
		c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, reuse.ID, c.ID)
		hit, err := s.CompleteFromCache(ctx, c.ID, c.Epoch)
		require.NoError(t, err)
		require.True(t, hit)
		reuse, err = s.GetJob(ctx, bob.ID, reuse.ID)
		require.NoError(t, err)
		require.Zero(t, reuse.Revision)
		segs, err := s.RevisionSegments(ctx, reuse, 0)
		require.NoError(t, err)
		for _, sg := range segs {
			require.NotContains(t, sg.Text, "alice", "the cache copies the machine's transcript")
		}
		_, err = s.RevisionSegments(ctx, reuse, 1)
		require.Equal(t, errcode.RevisionNotFound, job.CodeOf(err))

		n, err := s.ExpireTranscripts(ctx, time.Now().Add(time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		left, err := s.RevisionSegments(ctx, edited, 1)
		require.Equal(t, errcode.RevisionNotFound, job.CodeOf(err), "retention deleted the revision: %v", left)
		_, err = s.SaveRevision(ctx, u.ID, edited.ID, 1, []job.Segment{{StartMS: 0, EndMS: 900, Text: "late"}}, nil)
		require.Equal(t, job.CodeExpired, job.CodeOf(err), "an expired transcript is not edited")

		again := succeeded(t, s, u)
		_, err = s.SaveRevision(ctx, u.ID, again.ID, 0, []job.Segment{{StartMS: 0, EndMS: 900, Text: "edit"}}, nil)
		require.NoError(t, err)
		_, err = s.PurgeJob(ctx, u.ID, again.ID)
		require.NoError(t, err)
		_, err = s.RevisionSegments(ctx, again, 1)
		require.Equal(t, errcode.RevisionNotFound, job.CodeOf(err), "a purge takes the revisions with the job")
	})
}
