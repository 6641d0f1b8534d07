package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

func entries(n int) []store.BatchEntry {
	es := make([]store.BatchEntry, n)
	for i := range es {
		u := fmt.Sprintf("http://example.com/%d.ogg", i)
		es[i] = store.BatchEntry{URL: u, CanonicalURL: u, SourceKind: job.SourceHTTP}
	}
	return es
}

func TestBatchOfAListCreatesItsChildrenAtOnceAndEndsWhenTheyDo(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		b, replayed, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, Entries: entries(3), Options: store.BatchOptions{Language: "en"}})
		require.NoError(t, err)
		require.False(t, replayed)
		require.Equal(t, store.BatchRunning, b.Status)
		require.Equal(t, store.ListSource, b.URL)
		require.Equal(t, store.BatchCounts{Total: 3, Queued: 3}, b.Counts)

		jobs, err := s.ListBatchJobs(ctx, u.ID, b.ID, 2, 0)
		require.NoError(t, err)
		require.Len(t, jobs, 2)
		require.Equal(t, "http://example.com/0.ogg", jobs[0].URL)
		require.Equal(t, "en", jobs[0].Language)
		rest, err := s.ListBatchJobs(ctx, u.ID, b.ID, 2, 2)
		require.NoError(t, err)
		require.Len(t, rest, 1)
		require.Equal(t, "http://example.com/2.ogg", rest[0].URL)

		// Not done while a child runs.
		ended, err := s.FinishBatches(ctx)
		require.NoError(t, err)
		require.Empty(t, ended)
		for _, j := range append(jobs, rest...) {
			_, err := s.CancelJob(ctx, u.ID, j.ID)
			require.NoError(t, err)
		}
		ended, err = s.FinishBatches(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{b.ID}, ended)
		got, err := s.GetBatch(ctx, u.ID, b.ID)
		require.NoError(t, err)
		require.Equal(t, store.BatchDone, got.Status)
		require.False(t, got.FinishedAt.IsZero())
		require.Equal(t, store.BatchCounts{Total: 3, Cancelled: 3}, got.Counts)
		ended, err = s.FinishBatches(ctx)
		require.NoError(t, err)
		require.Empty(t, ended, "a batch ends once")

		// Another user sees none of it.
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		_, err = s.GetBatch(ctx, bob.ID, b.ID)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.ListBatchJobs(ctx, bob.ID, b.ID, 10, 0)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.GetBatch(ctx, u.ID, "not-a-uuid")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
	})
}

func TestEnumeratingTwiceCreatesEachChildOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, URL: "https://www.youtube.com/playlist?list=PL1", CanonicalURL: "https://www.youtube.com/playlist?list=PL1", MaxItems: 10})
		require.NoError(t, err)
		require.Equal(t, store.BatchEnumerating, b.Status)

		// The first enumerator adds two entries and dies (its lease is short:
		// long enough to add them, over soon after).
		first, ok, err := s.ClaimEnumeration(ctx, "core-1", 500*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		n, err := s.AddBatchJobs(ctx, b.ID, first.Attempt, 0, entries(2))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Eventually(t, func() bool {
			_, ok, err := s.ClaimEnumeration(ctx, "core-2", lease)
			require.NoError(t, err)
			return ok
		}, 5*time.Second, 5*time.Millisecond)
		second, err := s.GetBatch(ctx, "", b.ID)
		require.NoError(t, err)
		require.Equal(t, first.Attempt+1, second.Attempt)

		// The dead one's late write is refused; the new one adds only what is new.
		_, err = s.AddBatchJobs(ctx, b.ID, first.Attempt, 0, entries(4))
		require.ErrorIs(t, err, job.ErrLeaseLost)
		n, err = s.AddBatchJobs(ctx, b.ID, second.Attempt, 0, entries(4))
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.NoError(t, s.FinishEnumeration(ctx, b.ID, second.Attempt, 4, 1))
		got, err := s.GetBatch(ctx, u.ID, b.ID)
		require.NoError(t, err)
		require.Equal(t, store.BatchRunning, got.Status)
		require.Equal(t, 4, got.Entries)
		require.Equal(t, 1, got.Skipped)
		require.Equal(t, 4, got.Counts.Total)
		counts, err := s.BatchCounts(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, store.BatchCounts{Total: 4, Queued: 4}, counts)
		_, ok, err = s.ClaimEnumeration(ctx, "core-3", lease)
		require.NoError(t, err)
		require.False(t, ok, "an enumerated batch is not claimed again")
	})
}

func TestFailedEnumerationRetriesThenFails(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, URL: "https://example.com/p", CanonicalURL: "https://example.com/p"})
		require.NoError(t, err)
		c, ok, err := s.ClaimEnumeration(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		st, err := s.FailEnumeration(ctx, b.ID, c.Attempt, &job.Error{Code: job.CodeDownloadFailed, Message: "net", Retryable: true}, 0)
		require.NoError(t, err)
		require.Equal(t, store.BatchEnumerating, st)
		c, ok, err = s.ClaimEnumeration(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		st, err = s.FailEnumeration(ctx, b.ID, c.Attempt, job.Errorf(job.CodeInvalidURL, "yt-dlp does not support this URL"), 0)
		require.NoError(t, err)
		require.Equal(t, store.BatchFailed, st)
		got, err := s.GetBatch(ctx, u.ID, b.ID)
		require.NoError(t, err)
		require.Equal(t, store.BatchFailed, got.Status)
		require.Equal(t, job.CodeInvalidURL, got.ErrorCode)
	})
}

func TestCancelBatchCancelsWhatIsLeftAndStopsEnumeration(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, URL: "https://example.com/p", CanonicalURL: "https://example.com/p"})
		require.NoError(t, err)
		c, ok, err := s.ClaimEnumeration(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = s.AddBatchJobs(ctx, b.ID, c.Attempt, 0, entries(3))
		require.NoError(t, err)
		held, ok, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)

		got, err := s.CancelBatch(ctx, u.ID, b.ID)
		require.NoError(t, err)
		require.Equal(t, store.BatchCancelled, got.Status)
		require.Equal(t, store.BatchCounts{Total: 3, Cancelled: 3}, got.Counts)
		_, err = s.AddBatchJobs(ctx, b.ID, c.Attempt, 3, entries(5))
		require.ErrorIs(t, err, job.ErrLeaseLost)
		l, err := s.ExtendLease(ctx, held.ID, held.Epoch, lease, -1)
		require.NoError(t, err)
		require.True(t, l.Cancel, "the download holding a child hears of the cancel")

		list, err := s.ListBatches(ctx, u.ID, 10, "")
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, 3, list[0].Counts.Cancelled)
	})
}

func TestBatchIdempotencyAndQuota(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		n := store.NewBatch{UserID: u.ID, Entries: entries(2), IdempotencyKey: "k1", Fingerprint: []byte("f1")}
		first, _, err := s.CreateBatch(ctx, n)
		require.NoError(t, err)
		again, replayed, err := s.CreateBatch(ctx, n)
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, first.ID, again.ID)
		require.Equal(t, 2, again.Counts.Total, "a replay adds no children")
		n.Fingerprint = []byte("f2")
		_, _, err = s.CreateBatch(ctx, n)
		require.Equal(t, job.CodeIdempotencyKey, job.CodeOf(err))

		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "small", MaxConcurrent: 5}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "small"))
		_, _, err = s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, URL: "https://example.com/p", CanonicalURL: "https://example.com/p", MaxItems: 4})
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err))
		require.ErrorContains(t, err, "may create 4 jobs and 2 of 5 concurrent jobs are running: ask for at most 3 items")
		_, _, err = s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, Entries: entries(3)})
		require.NoError(t, err)

		_, _, err = s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, URL: "https://example.com/p", CanonicalURL: "https://example.com/p", MaxItems: store.MaxBatchItems + 1})
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
	})
}

func TestConcurrentBatchCreationsWithOneKeyMakeOneBatch(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ids := make([]string, 6)
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				b, _, err := s.CreateBatch(context.Background(), store.NewBatch{UserID: u.ID, Entries: entries(2), IdempotencyKey: "same", Fingerprint: []byte("f")})
				ids[i], errs[i] = b.ID, err
			})
		}
		wg.Wait()
		for i := range ids {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i])
		}
		list, err := s.ListBatches(context.Background(), u.ID, 10, "")
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, 2, list[0].Counts.Total)
	})
}

func TestABatchsEndIsNotifiedOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, Entries: entries(2), Options: store.BatchOptions{WebhookURL: "https://hooks.example.com/batch"}})
		require.NoError(t, err)
		// A batch without a webhook anywhere writes nothing.
		quiet, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, Entries: entries(1)})
		require.NoError(t, err)
		for _, id := range []string{b.ID, quiet.ID} {
			_, err = s.CancelBatch(ctx, u.ID, id)
			require.NoError(t, err)
		}
		// Cancelled batches have ended already; a running one ends by sweep.
		running, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, Entries: entries(1), Options: store.BatchOptions{WebhookURL: "https://hooks.example.com/batch"}})
		require.NoError(t, err)
		kids, err := s.ListBatchJobs(ctx, u.ID, running.ID, 10, 0)
		require.NoError(t, err)
		_, err = s.CancelJob(ctx, u.ID, kids[0].ID)
		require.NoError(t, err)
		ended, err := s.FinishBatches(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{running.ID}, ended)
		_, err = s.FinishBatches(ctx)
		require.NoError(t, err)

		due, err := s.ClaimNotifications(ctx, 100, time.Minute)
		require.NoError(t, err)
		var batchDone []store.Notification
		for _, n := range due {
			if n.Event == store.BatchDoneEvent {
				batchDone = append(batchDone, n)
			}
		}
		require.Len(t, batchDone, 1, "one end, one message")
		require.Equal(t, "https://hooks.example.com/batch", batchDone[0].Target)
		of, err := s.BatchOfJob(ctx, batchDone[0].JobID)
		require.NoError(t, err)
		require.Equal(t, running.ID, of.ID)
		require.Equal(t, store.BatchDone, of.Status)

		lone := create(t, s, u)
		_, err = s.BatchOfJob(ctx, lone.ID)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
	})
}

func TestOpenBatchesAreBounded(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		var first store.Batch
		for i := range store.MaxOpenBatches {
			b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, URL: "https://example.com/p", CanonicalURL: "https://example.com/p"})
			require.NoError(t, err)
			if i == 0 {
				first = b
			}
		}
		_, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, Entries: entries(1)})
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err))
		require.ErrorContains(t, err, "10 of your batches have not ended")
		_, err = s.CancelBatch(ctx, u.ID, first.ID)
		require.NoError(t, err)
		_, _, err = s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, Entries: entries(1)})
		require.NoError(t, err, "an ended batch frees its place")
	})
}
