package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// recorder is a store's change observer that checks each change was
// committed when reported: another connection already reads the new status.
type recorder struct {
	db  sqldb.DB
	mu  sync.Mutex
	got []store.Change
	bad []string // changes reported before they were visible
}

func (r *recorder) observe(ctx context.Context, c store.Change) {
	var st job.Status
	err := r.db.QueryRow(ctx, `SELECT status FROM jobs WHERE id = $1`, c.JobID).Scan(&st)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || st != c.To {
		r.bad = append(r.bad, fmt.Sprintf("%+v reported while the database says %q (%v)", c, st, err))
	}
	r.got = append(r.got, c)
}

// take returns what was reported since the last take, checking it was
// committed when reported.
func (r *recorder) take(t *testing.T, what string) []store.Change {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.bad, what)
	got := append([]store.Change{}, r.got...)
	r.got = nil
	return got
}

// expect checks that exactly want was reported since the last take, in order.
func (r *recorder) expect(t *testing.T, what string, want ...store.Change) {
	t.Helper()
	if want == nil {
		want = []store.Change{}
	}
	require.Equal(t, want, r.take(t, what), what)
}

// recorded opens a store whose changes rec records, with its user.
func recorded(t *testing.T, open storetest.Maker) (*store.Store, store.User, *recorder) {
	t.Helper()
	env := open(t)
	rec := &recorder{db: env.DB}
	return store.New(env.DB, store.OnChange(rec.observe)), env.User, rec
}

func change(id string, from, to job.Status) store.Change {
	return store.Change{JobID: id, From: from, To: to}
}

// TestEveryTransitionReportsItsChangeOnceAfterCommit walks jobs through every
// transition method: each reports exactly its from → to, once, when it is
// committed; a refused or rolled-back transition reports nothing.
func TestEveryTransitionReportsItsChangeOnceAfterCommit(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		s, u, rec := recorded(t, open)
		ctx := context.Background()
		const (
			queued, downloading, ready = job.StatusQueued, job.StatusDownloading, job.StatusReady
			transcribing, succeeded    = job.StatusTranscribing, job.StatusSucceeded
			failed, cancelled          = job.StatusFailed, job.StatusCancelled
		)
		newJob := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg",
			SourceKind: job.SourceHTTP, IdempotencyKey: "k1", Fingerprint: []byte("f1")}

		// The happy path, step by step.
		j, err := s.CreateJob(ctx, newJob)
		require.NoError(t, err)
		rec.expect(t, "create", change(j.ID, "", queued))
		_, replayed, err := s.CreateJobOnce(ctx, newJob)
		require.NoError(t, err)
		require.True(t, replayed)
		rec.expect(t, "a replayed create changes nothing")
		other := newJob
		other.Fingerprint = []byte("f2")
		_, _, err = s.CreateJobOnce(ctx, other)
		require.Equal(t, job.CodeIdempotencyKey, job.CodeOf(err))
		rec.expect(t, "a create refused inside its transaction (rolled back)")

		c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		rec.expect(t, "claim queued", change(j.ID, queued, downloading))
		_, err = s.ExtendLease(ctx, c.ID, c.Epoch, lease, -1)
		require.NoError(t, err)
		rec.expect(t, "a renewal alone")
		require.ErrorIs(t, s.MarkReady(ctx, c.ID, c.Epoch+1, store.Media{AudioKey: "a"}), job.ErrLeaseLost)
		rec.expect(t, "mark ready by a stale epoch")
		require.NoError(t, s.MarkReady(ctx, c.ID, c.Epoch, store.Media{Title: "a", Duration: time.Second, AudioKey: "audio/a"}))
		rec.expect(t, "mark ready", change(j.ID, downloading, ready))

		c, ok, err = s.ClaimReady(ctx, "node-1", sphinx, lease, 0)
		require.NoError(t, err)
		require.True(t, ok)
		rec.expect(t, "claim ready", change(j.ID, ready, transcribing))
		_, err = s.ExtendLease(ctx, c.ID, c.Epoch, lease, 0.5)
		require.NoError(t, err)
		rec.expect(t, "progress", change(j.ID, transcribing, transcribing))
		_, err = s.PutSegments(ctx, c.ID, c.Epoch, []job.Segment{seg(0)}, 0.9)
		require.NoError(t, err)
		rec.expect(t, "segments", change(j.ID, transcribing, transcribing))
		_, err = s.PutSegments(ctx, c.ID, c.Epoch+1, []job.Segment{seg(1)}, 0.9)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		rec.expect(t, "segments from a stale epoch")
		_, err = s.Complete(ctx, c.ID, c.Epoch, "en", 2)
		require.Equal(t, job.CodeConflict, job.CodeOf(err))
		rec.expect(t, "complete with a segment missing")
		done, err := s.Complete(ctx, c.ID, c.Epoch, "en", 1)
		require.NoError(t, err)
		require.True(t, done)
		rec.expect(t, "complete", change(j.ID, transcribing, succeeded))
		done, err = s.Complete(ctx, c.ID, c.Epoch, "en", 1)
		require.NoError(t, err)
		require.False(t, done)
		rec.expect(t, "complete again")
		_, err = s.CancelJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		rec.expect(t, "cancel of a finished job")

		// The same media again: the transcript cache answers.
		hitJob := create(t, s, u)
		rec.expect(t, "create", change(hitJob.ID, "", queued))
		c, _, err = s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		rec.expect(t, "claim", change(hitJob.ID, queued, downloading))
		hit, err := s.CompleteFromCache(ctx, c.ID, c.Epoch)
		require.NoError(t, err)
		require.True(t, hit)
		rec.expect(t, "cache hit", change(hitJob.ID, downloading, succeeded))

		// Failures, releases and cancels of a held job.
		k, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "u", CanonicalURL: "u", SourceKind: job.SourceHTTP, MaxAttempts: 2})
		require.NoError(t, err)
		c, _, err = s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		rec.expect(t, "create and claim", change(k.ID, "", queued), change(k.ID, queued, downloading))
		_, err = s.Fail(ctx, c.ID, c.Epoch+1, &job.Error{Code: job.CodeDownloadFailed, Retryable: true})
		require.ErrorIs(t, err, job.ErrLeaseLost)
		rec.expect(t, "fail by a stale epoch")
		st, err := s.Fail(ctx, c.ID, c.Epoch, &job.Error{Code: job.CodeDownloadFailed, Retryable: true})
		require.NoError(t, err)
		require.Equal(t, queued, st)
		rec.expect(t, "retryable failure", change(k.ID, downloading, queued))
		forceRunnable(t, s, k.ID)
		c, _, err = s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		st, err = s.Release(ctx, c.ID, c.Epoch, 0)
		require.NoError(t, err)
		require.Equal(t, queued, st)
		rec.expect(t, "claim and release", change(k.ID, queued, downloading), change(k.ID, downloading, queued))
		c, _, err = s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		_, err = s.CancelJob(ctx, u.ID, k.ID)
		require.NoError(t, err)
		rec.expect(t, "claim and cancel", change(k.ID, queued, downloading), change(k.ID, downloading, cancelled))
		st, err = s.Fail(ctx, c.ID, c.Epoch, &job.Error{Code: job.CodeDownloadFailed})
		require.NoError(t, err)
		require.Equal(t, cancelled, st)
		rec.expect(t, "the holder's failure after a cancel")

		// An admin retries a failed job; a job nobody holds is cancelled.
		f, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "f", CanonicalURL: "f", SourceKind: job.SourceHTTP})
		require.NoError(t, err)
		c, _, err = s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		_, err = s.Fail(ctx, c.ID, c.Epoch, &job.Error{Code: job.CodeDownloadFailed})
		require.NoError(t, err)
		rec.expect(t, "a permanent failure", change(f.ID, "", queued), change(f.ID, queued, downloading), change(f.ID, downloading, failed))
		_, err = s.RetryJob(ctx, "admin", j.ID)
		require.Equal(t, job.CodeConflict, job.CodeOf(err))
		rec.expect(t, "retry of a succeeded job")
		_, err = s.RetryJob(ctx, "admin", f.ID)
		require.NoError(t, err)
		rec.expect(t, "retry", change(f.ID, failed, queued))
		_, err = s.CancelJob(ctx, u.ID, f.ID)
		require.NoError(t, err)
		rec.expect(t, "cancel of a queued job", change(f.ID, queued, cancelled))

		// A lease that ran out: the rescuer requeues.
		r, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "r", CanonicalURL: "r", SourceKind: job.SourceHTTP})
		require.NoError(t, err)
		_, _, err = s.ClaimQueued(ctx, "core-1", time.Millisecond)
		require.NoError(t, err)
		rec.expect(t, "create and claim", change(r.ID, "", queued), change(r.ID, queued, downloading))
		require.Eventually(t, func() bool {
			ids, err := s.RescueExpired(ctx, 10)
			require.NoError(t, err)
			return len(ids) == 1
		}, 10*time.Second, 10*time.Millisecond)
		rec.expect(t, "rescue", change(r.ID, downloading, queued))
	})
}

// TestChunkTransitionsReportEveryJobTheyChange: splitting reports the parent
// and each new chunk; a chunk done reports the parent's progress; a chunk
// failing for good reports itself, its parent and the chunks cancelled.
func TestChunkTransitionsReportEveryJobTheyChange(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		s, u, rec := recorded(t, open)
		ctx := context.Background()
		p, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "long", CanonicalURL: "long", SourceKind: job.SourceHTTP, MaxAttempts: 1})
		require.NoError(t, err)
		c, _, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		rec.expect(t, "create and claim", change(p.ID, "", job.StatusQueued), change(p.ID, job.StatusQueued, job.StatusDownloading))
		chunks := []store.Chunk{{AudioKey: "audio/0", Duration: 10_000}, {AudioKey: "audio/1", OffsetMS: 10_000, Duration: 8_000},
			{AudioKey: "audio/2", OffsetMS: 18_000, Duration: 8_000}}
		require.NoError(t, s.SplitIntoChunks(ctx, c.ID, c.Epoch, store.Media{AudioKey: "audio/all"}, chunks))
		split := rec.take(t, "split")
		require.Len(t, split, 1+len(chunks))
		require.Equal(t, change(p.ID, job.StatusDownloading, job.StatusTranscribing), split[0])
		var ids []string
		for i, c := range split[1:] {
			require.Equal(t, change(c.JobID, "", job.StatusReady), c, "chunk %d is new and ready", i)
			ids = append(ids, c.JobID)
		}
		var claims []store.Change
		for range chunks {
			ch, ok, err := s.ClaimReady(ctx, "node", sphinx, lease, 0)
			require.NoError(t, err)
			require.True(t, ok)
			claims = append(claims, change(ch.ID, job.StatusReady, job.StatusTranscribing))
		}
		require.ElementsMatch(t, claims, rec.take(t, "claims"))
		for i, id := range ids {
			ch, err := s.GetJob(ctx, "", id)
			require.NoError(t, err)
			require.Equal(t, i, ch.ChunkIndex, "the split reports its chunks in order")
		}

		chunk0, err := s.GetJob(ctx, "", ids[0])
		require.NoError(t, err)
		transcribed(t, s, chunk0, seg(0))
		rec.expect(t, "a chunk done", change(ids[0], job.StatusTranscribing, job.StatusTranscribing),
			change(ids[0], job.StatusTranscribing, job.StatusSucceeded))
		_, _, err = s.FinishParent(ctx, ids[0])
		require.NoError(t, err)
		rec.expect(t, "the parent progresses", change(p.ID, job.StatusTranscribing, job.StatusTranscribing))

		// Chunk 2 is handed back (ready again); chunk 1 fails for good.
		chunk2, err := s.GetJob(ctx, "", ids[2])
		require.NoError(t, err)
		_, err = s.Release(ctx, ids[2], chunk2.Epoch, time.Hour)
		require.NoError(t, err)
		rec.expect(t, "release", change(ids[2], job.StatusTranscribing, job.StatusReady))
		chunk1, err := s.GetJob(ctx, "", ids[1])
		require.NoError(t, err)
		_, err = s.Fail(ctx, ids[1], chunk1.Epoch, &job.Error{Code: job.CodeEngineFailed})
		require.NoError(t, err)
		rec.expect(t, "a chunk failed", change(ids[1], job.StatusTranscribing, job.StatusFailed),
			change(p.ID, job.StatusTranscribing, job.StatusFailed), change(ids[2], job.StatusReady, job.StatusCancelled))
	})
}

// TestCancellingAChunkedJobReportsEachHeldChunkAsHeld: the parent's cancel
// and its chunks' each report the state they left, so a transcribing
// chunk's holder is woken and a ready one's is not.
func TestCancellingAChunkedJobReportsEachHeldChunkAsHeld(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		s, u, rec := recorded(t, open)
		ctx := context.Background()
		p, chunks := split(t, s, u)
		chunk1, err := s.GetJob(ctx, "", chunks[1].ID)
		require.NoError(t, err)
		_, err = s.Release(ctx, chunk1.ID, chunk1.Epoch, time.Hour)
		require.NoError(t, err)
		rec.take(t, "the split, claims and release")
		_, err = s.CancelJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		rec.expect(t, "cancel the parent", change(p.ID, job.StatusTranscribing, job.StatusCancelled))
		require.NoError(t, s.CancelChunks(ctx, p.ID))
		require.ElementsMatch(t, []store.Change{change(chunks[0].ID, job.StatusTranscribing, job.StatusCancelled),
			change(chunks[1].ID, job.StatusReady, job.StatusCancelled)}, rec.take(t, "cancel its chunks"))
	})
}

// TestBatchedWritesReportTheirChangesOnceAfterCommit: the writes that go in
// batches — grouped creations, complete-and-next — report each change once
// their transaction has committed; a creation is reported by its batch, so
// also when its caller stopped waiting.
func TestBatchedWritesReportTheirChangesOnceAfterCommit(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		s, u, rec := recorded(t, open)
		ctx := context.Background()
		plain := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP}
		jobs, errs := s.CreateTogether([]store.NewJob{plain, plain})
		require.NoError(t, errors.Join(errs...))
		rec.expect(t, "two creations in one batch", change(jobs[0].ID, "", job.StatusQueued), change(jobs[1].ID, "", job.StatusQueued))
		j, err := s.CreateJob(ctx, plain)
		require.NoError(t, err)
		rec.expect(t, "a creation alone", change(j.ID, "", job.StatusQueued))

		var held job.Job
		for i := range 2 {
			c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, s.MarkReady(ctx, c.ID, c.Epoch, store.Media{Title: "a", Duration: time.Second, AudioKey: "audio/" + c.ID}))
			if i == 0 {
				held, ok, err = s.ClaimReady(ctx, "node-1", sphinx, lease, 0)
				require.NoError(t, err)
				require.True(t, ok)
			}
		}
		rec.take(t, "to transcribing")
		_, next, claimed, err := s.CompleteAndClaimReady(ctx, held.ID, held.Epoch, "en", 0, "node-1", sphinx, lease, 0)
		require.NoError(t, err)
		require.True(t, claimed)
		rec.expect(t, "complete-and-next", change(held.ID, job.StatusTranscribing, job.StatusSucceeded),
			change(next.ID, job.StatusReady, job.StatusTranscribing))
	})
}
