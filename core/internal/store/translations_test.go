package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// succeeded makes a job of u's that succeeded with two segments.
func succeeded(t *testing.T, s *store.Store, u store.User) job.Job {
	t.Helper()
	ctx := context.Background()
	j := create(t, s, u)
	c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, j.ID, c.ID)
	segs := []job.Segment{{Seq: 0, StartMS: 0, EndMS: 900, Text: "one"}, {Seq: 1, StartMS: 900, EndMS: 2000, Text: "two"}}
	require.NoError(t, s.CompleteFromCaptions(ctx, c.ID, c.Epoch, store.Media{Duration: 2 * time.Second}, "en", job.FromCaptions, segs))
	return c
}

func TestTranslationsAreQueuedClaimedLeasedAndStored(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)

		j := succeeded(t, s, u)
		running := create(t, s, u) // queued: not yet translatable
		early, created, err := s.RequestTranslation(ctx, u.ID, running.ID, "fr", 0)
		require.NoError(t, err)
		require.True(t, created)
		_, ok, err := s.ClaimTranslation(ctx, "core-1", lease)
		require.NoError(t, err)
		require.False(t, ok, "a job still running has nothing to translate")

		_, _, err = s.RequestTranslation(ctx, bob.ID, j.ID, "de", 6)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err), "another user's job")
		_, err = s.ListTranslations(ctx, bob.ID, j.ID)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, _, err = s.RequestTranslation(ctx, u.ID, "not-a-uuid", "de", 6)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))

		tr, created, err := s.RequestTranslation(ctx, u.ID, j.ID, "de", 6)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, store.TranslationQueued, tr.State)
		again, created, err := s.RequestTranslation(ctx, u.ID, j.ID, "de", 6)
		require.NoError(t, err)
		require.False(t, created, "asked twice, queued once")
		require.Equal(t, tr.ID, again.ID)
		_, texts, err := s.GetTranslation(ctx, u.ID, j.ID, "de")
		require.NoError(t, err)
		require.Nil(t, texts)

		// A claim with a lease that has run out at once: the core died.
		c, ok, err := s.ClaimTranslation(ctx, "core-1", 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, tr.ID, c.ID)
		require.Equal(t, store.TranslationRunning, c.State)
		require.Equal(t, 1, c.Attempt)
		// Another core takes it over; the first may no longer write.
		c2, ok, err := s.ClaimTranslation(ctx, "core-2", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, tr.ID, c2.ID)
		require.Equal(t, 2, c2.Attempt)
		_, ok, err = s.ClaimTranslation(ctx, "core-3", lease)
		require.NoError(t, err)
		require.False(t, ok, "a live lease is not taken")
		require.ErrorIs(t, s.ExtendTranslation(ctx, tr.ID, "core-1", lease), job.ErrLeaseLost)
		require.NoError(t, s.ExtendTranslation(ctx, tr.ID, "core-2", lease))
		res := store.TranslationResult{Translator: "deepl", SourceHash: "h1", Texts: []string{"eins", "zwei"}, Characters: 6}
		require.ErrorIs(t, s.CompleteTranslation(ctx, tr.ID, "core-1", res), job.ErrLeaseLost)
		require.NoError(t, s.CompleteTranslation(ctx, tr.ID, "core-2", res))

		got, texts, err := s.GetTranslation(ctx, u.ID, j.ID, "de")
		require.NoError(t, err)
		require.Equal(t, store.TranslationSucceeded, got.State)
		require.Equal(t, []string{"eins", "zwei"}, texts)
		require.False(t, got.FinishedAt.IsZero())
		_, _, err = s.GetTranslation(ctx, u.ID, j.ID, "es")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))

		cached, ok, err := s.CachedTranslation(ctx, "h1", "de", "deepl")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, texts, cached)
		for _, miss := range [][3]string{{"h2", "de", "deepl"}, {"h1", "fr", "deepl"}, {"h1", "de", "openai:m"}} {
			_, ok, err := s.CachedTranslation(ctx, miss[0], miss[1], miss[2])
			require.NoError(t, err)
			require.False(t, ok, "%v", miss)
		}

		// The early request runs now its job has ended (cancelled here); it fails.
		_, err = s.CancelJob(ctx, u.ID, running.ID)
		require.NoError(t, err)
		f, ok, err := s.ClaimTranslation(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, early.ID, f.ID)
		require.NoError(t, s.FailTranslation(ctx, f.ID, "core-1", job.Errorf("translation_failed", "no")))
		require.ErrorIs(t, s.FailTranslation(ctx, f.ID, "core-1", job.Errorf("translation_failed", "no")), job.ErrLeaseLost)
		requeued, created, err := s.RequestTranslation(ctx, u.ID, running.ID, "fr", 0)
		require.NoError(t, err)
		require.True(t, created, "a failed translation asked for again is queued again")
		require.Equal(t, store.TranslationQueued, requeued.State)
		require.Empty(t, requeued.ErrorCode)

		list, err := s.ListTranslations(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "de", list[0].Language)
	})
}

func TestTranslationQuotaRefusesUpFrontAndChargesOnlyWhatWasTranslated(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "small", MonthlyTranslationChars: 100}))
		require.NoError(t, s.AssignPlan(ctx, u.Name, "small"))
		p, err := s.GetPlan(ctx, "small")
		require.NoError(t, err)
		require.Equal(t, 100, p.MonthlyTranslationChars)

		j := succeeded(t, s, u)
		_, _, err = s.RequestTranslation(ctx, u.ID, j.ID, "de", 101)
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err))
		require.Contains(t, err.Error(), "needs 101 characters")
		require.Contains(t, err.Error(), "100 left")

		tr, _, err := s.RequestTranslation(ctx, u.ID, j.ID, "de", 60)
		require.NoError(t, err)
		use, err := s.GetTranslationUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, store.TranslationUsage{Limit: 100, Used: 0, Pending: 60, ResetsAt: use.ResetsAt}, use)
		_, _, err = s.RequestTranslation(ctx, u.ID, j.ID, "fr", 60)
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err), "queued translations count")

		c, ok, err := s.ClaimTranslation(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.CompleteTranslation(ctx, c.ID, "core-1", store.TranslationResult{Translator: "deepl", SourceHash: "h", Texts: []string{"a", "b"}, Characters: 60}))
		use, err = s.GetTranslationUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(60), use.Used)
		require.Equal(t, int64(0), use.Pending)
		require.Equal(t, int64(40), use.Remaining())
		require.NoError(t, use.Check(40, 0))
		require.Error(t, use.Check(41, 0))

		// A cached translation costs nothing.
		fr, _, err := s.RequestTranslation(ctx, u.ID, j.ID, "fr", 30)
		require.NoError(t, err)
		c, ok, err = s.ClaimTranslation(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, fr.ID, c.ID)
		require.NoError(t, s.CompleteTranslation(ctx, c.ID, "core-1", store.TranslationResult{Translator: "deepl", SourceHash: "h", Texts: []string{"a", "b"}, Characters: 30, Cached: true}))
		use, err = s.GetTranslationUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, int64(60), use.Used)
		require.Equal(t, tr.JobID, j.ID)

		// A month used up refuses even a translation of unknown size.
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "small", MonthlyTranslationChars: 60}))
		_, _, err = s.RequestTranslation(ctx, u.ID, j.ID, "es", 0)
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err))
	})
}

func TestTranslationsExpireWithTheirTranscriptAndGoWithTheirJob(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		for _, purge := range []bool{false, true} {
			j := succeeded(t, s, u)
			_, _, err := s.RequestTranslation(ctx, u.ID, j.ID, "de", 6)
			require.NoError(t, err)
			c, ok, err := s.ClaimTranslation(ctx, "core-1", lease)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, s.CompleteTranslation(ctx, c.ID, "core-1", store.TranslationResult{Translator: "deepl", SourceHash: "h-" + j.ID, Texts: []string{"eins", "zwei"}, Characters: 6}))
			if purge {
				_, err = s.PurgeJob(ctx, u.ID, j.ID)
			} else {
				_, err = s.ExpireTranscripts(ctx, time.Now().Add(time.Hour), 10)
			}
			require.NoError(t, err)
			_, ok, err = s.CachedTranslation(ctx, "h-"+j.ID, "de", "deepl")
			require.NoError(t, err)
			require.False(t, ok, "no translated text outlives its transcript (purge %v)", purge)
			use, err := s.GetTranslationUsage(ctx, u.ID)
			require.NoError(t, err)
			require.Positive(t, use.Used, "the ledger keeps what was charged")
		}
	})
}
