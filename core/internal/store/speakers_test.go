package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestSpeakersRoundTrip: a job's speaker options, its segments' and words'
// speakers and the names its owner gives them come back as stored, and only
// the owner may name them.
func TestSpeakersRoundTrip(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		n := store.NewJob{UserID: u.ID, URL: "u", CanonicalURL: "http://example.com/talk.ogg", SourceKind: job.SourceHTTP,
			Source: job.SourceASR, Speakers: true, MinSpeakers: 2, MaxSpeakers: 3}
		r := readyJob(t, s, n)
		require.True(t, r.Speakers)
		require.Equal(t, [2]int{2, 3}, [2]int{r.MinSpeakers, r.MaxSpeakers})
		require.Nil(t, r.SpeakerNames)

		_, ok, err := s.ClaimReady(ctx, "node", openai, lease, 0)
		require.NoError(t, err)
		require.False(t, ok, "an engine that does not label speakers never gets a speakers job")
		diarizing := []engines.Caps{{Name: "openai", Models: []string{"gpt-4o-transcribe-diarize"}, Speakers: true}}
		j, ok, err := s.ClaimReady(ctx, "node", diarizing, lease, 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, r.ID, j.ID)

		segs := []job.Segment{
			{Seq: 0, StartMS: 0, EndMS: 1000, Text: "Hello there.", Speaker: "Speaker 1", Words: []job.Word{
				{StartMS: 0, EndMS: 400, Text: "Hello", Speaker: "Speaker 1"}, {StartMS: 450, EndMS: 1000, Text: "there.", Speaker: "Speaker 1"}}},
			{Seq: 1, StartMS: 1000, EndMS: 2000, Text: "Hi.", Speaker: "Speaker 2"},
			{Seq: 2, StartMS: 2000, EndMS: 2500, Text: "Unlabelled."},
		}
		_, err = s.PutSegments(ctx, j.ID, j.Epoch, segs, -1)
		require.NoError(t, err)
		_, err = s.Complete(ctx, j.ID, j.Epoch, "en", len(segs))
		require.NoError(t, err)
		got, err := s.Segments(ctx, j.ID, j.Epoch, -1)
		require.NoError(t, err)
		require.Equal(t, segs, got)

		names := map[string]string{"Speaker 1": "Alice", "Speaker 2": "Bob"}
		renamed, err := s.SetSpeakerNames(ctx, u.ID, j.ID, names)
		require.NoError(t, err)
		require.Equal(t, names, renamed.SpeakerNames)
		again, err := s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, names, again.SpeakerNames)

		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		_, err = s.SetSpeakerNames(ctx, bob.ID, j.ID, map[string]string{"Speaker 1": "Mallory"})
		require.Equal(t, job.CodeNotFound, job.CodeOf(err), "another user's job is not found")
		_, err = s.SetSpeakerNames(ctx, u.ID, "not-a-uuid", names)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		again, err = s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, names, again.SpeakerNames, "a refused rename changed nothing")

		cleared, err := s.SetSpeakerNames(ctx, u.ID, j.ID, nil)
		require.NoError(t, err)
		require.Nil(t, cleared.SpeakerNames)
	})
}

// TestTranscriptCacheKeepsSpeakersApart: a transcript without speaker
// labels is not one with them, nor one with other bounds; the names a donor's
// owner gave are not copied.
func TestTranscriptCacheKeepsSpeakersApart(t *testing.T) {
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
		media := store.NewJob{UserID: u.ID, URL: "u", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP,
			Source: job.SourceASR, Speakers: true, MaxSpeakers: 2}
		donor := claim(media)
		segs := []job.Segment{{Seq: 0, StartMS: 0, EndMS: 900, Text: "one", Speaker: "Speaker 1"}}
		require.NoError(t, s.CompleteFromCaptions(ctx, donor.ID, donor.Epoch, store.Media{Title: "a"}, "en", job.FromSpeech, segs))
		_, err := s.SetSpeakerNames(ctx, u.ID, donor.ID, map[string]string{"Speaker 1": "Alice"})
		require.NoError(t, err)

		for _, n := range []store.NewJob{
			{Speakers: false},
			{Speakers: true, MaxSpeakers: 3},
			{Speakers: true, MinSpeakers: 1, MaxSpeakers: 2},
		} {
			n.UserID, n.URL, n.CanonicalURL, n.SourceKind, n.Source = u.ID, "u", media.CanonicalURL, job.SourceHTTP, job.SourceASR
			c := claim(n)
			hit, err := s.CompleteFromCache(ctx, c.ID, c.Epoch)
			require.NoError(t, err)
			require.False(t, hit, "%+v is other work", n)
			_, err = s.Release(ctx, c.ID, c.Epoch, lease)
			require.NoError(t, err)
		}
		c := claim(media)
		hit, err := s.CompleteFromCache(ctx, c.ID, c.Epoch)
		require.NoError(t, err)
		require.True(t, hit)
		got, err := s.Segments(ctx, c.ID, c.Epoch, -1)
		require.NoError(t, err)
		require.Equal(t, segs, got, "the labels come with the copy")
		copied, err := s.GetJob(ctx, u.ID, c.ID)
		require.NoError(t, err)
		require.Nil(t, copied.SpeakerNames, "the donor's names stay the donor's")
	})
}
