package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

func TestCompleteFromCaptionsIsFencedAndStoresTheSegments(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := create(t, s, u)
		segs := []job.Segment{{Seq: 0, StartMS: 0, EndMS: 900, Text: "one"}, {Seq: 1, StartMS: 900, EndMS: 2000, Text: "two"}}
		m := store.Media{Title: "t", Uploader: "u", Duration: 2 * time.Second}
		require.Equal(t, job.CodeLeaseLost, job.CodeOf(s.CompleteFromCaptions(ctx, j.ID, j.Epoch, m, "en", job.FromCaptions, segs)),
			"a queued job is nobody's to complete")
		c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, job.CodeLeaseLost, job.CodeOf(s.CompleteFromCaptions(ctx, c.ID, c.Epoch-1, m, "en", job.FromCaptions, segs)), "a stale epoch")
		require.NoError(t, s.CompleteFromCaptions(ctx, c.ID, c.Epoch, m, "en", job.FromCaptions, segs))

		got, err := s.GetJob(ctx, u.ID, c.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)
		require.Equal(t, job.FromCaptions, got.TranscribedFrom)
		require.Equal(t, "u", got.MediaUploader)
		require.True(t, got.ReadyAt.IsZero(), "never waited for a GPU")
		stored, err := s.Segments(ctx, c.ID, c.Epoch, -1)
		require.NoError(t, err)
		require.Equal(t, []string{"one", "two"}, []string{stored[0].Text, stored[1].Text})
		require.Equal(t, job.CodeLeaseLost, job.CodeOf(s.CompleteFromCaptions(ctx, c.ID, c.Epoch, m, "en", job.FromCaptions, segs)), "only once")
	})
}

func TestTranscriptCacheMatchesMediaAndOptionsOnly(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		claim := func(n store.NewJob) job.Job {
			t.Helper()
			j, err := s.CreateJob(ctx, n)
			require.NoError(t, err)
			c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, j.ID, c.ID)
			return c
		}
		media := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP, Language: "en"}

		donor := claim(media)
		hit, err := s.CompleteFromCache(ctx, donor.ID, donor.Epoch)
		require.NoError(t, err)
		require.False(t, hit, "nothing to reuse yet")
		segs := []job.Segment{{Seq: 0, StartMS: 0, EndMS: 900, Text: "one"}}
		require.NoError(t, s.CompleteFromCaptions(ctx, donor.ID, donor.Epoch, store.Media{Title: "a"}, "en", job.FromCaptions, segs))

		for _, n := range []store.NewJob{
			{UserID: u.ID, URL: "x", CanonicalURL: "http://example.com/b.ogg", SourceKind: job.SourceHTTP, Language: "en"},
			{UserID: u.ID, URL: "x", CanonicalURL: media.CanonicalURL, SourceKind: job.SourceHTTP, Language: "de"},
			{UserID: u.ID, URL: "x", CanonicalURL: media.CanonicalURL, SourceKind: job.SourceHTTP, Language: "en", Model: "large"},
			{UserID: u.ID, URL: "x", CanonicalURL: media.CanonicalURL, SourceKind: job.SourceHTTP, Language: "en", Source: job.SourceASR},
		} {
			c := claim(n)
			hit, err := s.CompleteFromCache(ctx, c.ID, c.Epoch)
			require.NoError(t, err)
			require.False(t, hit, "%+v is other work", n)
			_, err = s.Release(ctx, c.ID, c.Epoch, time.Hour)
			require.NoError(t, err)
		}

		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		media.UserID = bob.ID
		c := claim(media)
		require.Equal(t, job.CodeLeaseLost, job.CodeOf(func() error { _, err := s.CompleteFromCache(ctx, c.ID, c.Epoch+1); return err }()))
		hit, err = s.CompleteFromCache(ctx, c.ID, c.Epoch)
		require.NoError(t, err)
		require.True(t, hit, "the same media and options, whoever asks")
		got, err := s.GetJob(ctx, bob.ID, c.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)
		require.Empty(t, got.ReusedFrom, "alice's job is none of bob's business")
		require.Equal(t, job.FromCaptions, got.TranscribedFrom)
		stored, err := s.Segments(ctx, c.ID, c.Epoch, -1)
		require.NoError(t, err)
		require.Len(t, stored, 1)
		require.Equal(t, "one", stored[0].Text)
	})
}
