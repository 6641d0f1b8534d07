package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestTranscriptCacheKeysOnVocabularyAndGuards: the vocabulary and the
// guards change a transcript's text, so a transcript made with other ones
// is never reused; the same ones are, with what the donor's guards removed.
func TestTranscriptCacheKeysOnVocabularyAndGuards(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		r := cacheRun{t: t, s: s}
		media := func(vocab []string, silence, repetition bool) store.NewJob {
			return store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP,
				Vocabulary: vocab, SilenceGuard: silence, RepetitionGuard: repetition}
		}
		donor := r.transcribe(media([]string{"Nomad", "Kubernetes"}, true, true), "a", "Nomad runs Kubernetes")
		require.NoError(t, s.RecordGuards(context.Background(), donor.ID, donor.Epoch, job.GuardCounts{SilenceDropped: 3}),
			"(after completion: changes nothing)")
		for _, n := range []store.NewJob{
			media(nil, true, true), media([]string{"Nomad"}, true, true), media([]string{"Kubernetes", "Nomad"}, true, true),
			media([]string{"Nomad", "Kubernetes"}, false, true), media([]string{"Nomad", "Kubernetes"}, true, false),
		} {
			_, hit := r.lookup(n)
			require.False(t, hit, "vocabulary %q, guards %v/%v is other work", n.Vocabulary, n.SilenceGuard, n.RepetitionGuard)
		}
		got, hit := r.lookup(media([]string{"Nomad", "Kubernetes"}, true, true))
		require.True(t, hit)
		require.Equal(t, "Nomad runs Kubernetes", r.text(got))
		require.Equal(t, []string{"Nomad", "Kubernetes"}, got.Vocabulary)
		require.Equal(t, job.Guards{Silence: true, Repetition: true}, got.Guards)
	})
}

// TestChunksCarryGuardsAndTheParentSumsThem: each chunk of long audio runs
// with its parent's vocabulary and guards, and the stitched parent shows
// what the guards removed from all of its chunks.
func TestChunksCarryGuardsAndTheParentSumsThem(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		p, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://example.com/long.ogg", CanonicalURL: "http://example.com/long.ogg",
			SourceKind: job.SourceHTTP, Vocabulary: []string{"Nomad"}, SilenceGuard: false, RepetitionGuard: true})
		require.NoError(t, err)
		c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, p.ID, c.ID)
		require.NoError(t, s.SplitIntoChunks(ctx, c.ID, c.Epoch, store.Media{Title: "long", AudioKey: "audio/all"},
			[]store.Chunk{{AudioKey: "audio/0", OffsetMS: 0, Duration: 10_000}, {AudioKey: "audio/1", OffsetMS: 10_000, Duration: 8_000}}))
		for i := range 2 {
			ch, ok, err := s.ClaimReady(ctx, "node", sphinx, lease, 0)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, []string{"Nomad"}, ch.Vocabulary)
			require.Equal(t, job.Guards{Silence: false, Repetition: true}, ch.Guards)
			require.NoError(t, s.RecordGuards(ctx, ch.ID, ch.Epoch, job.GuardCounts{SilenceDropped: 1, RepetitionDropped: i + 1, RepetitionTrimmed: 2}))
			transcribed(t, s, ch, job.Segment{Seq: 0, StartMS: 0, EndMS: 1000, Text: "Nomad"})
			_, _, err = s.FinishParent(ctx, ch.ID)
			require.NoError(t, err)
		}
		got, err := s.GetJob(ctx, u.ID, p.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)
		require.Equal(t, job.GuardCounts{SilenceDropped: 2, RepetitionDropped: 3, RepetitionTrimmed: 4}, got.Guards.GuardCounts)
	})
}

// TestOfferedModelsListEachModelOnce: every model the nodes seen lately
// advertise, once, with its engine; what any node's engine can do counts;
// an engine naming no model is listed as one; nodes not seen lately are not.
func TestOfferedModelsListEachModelOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()
		models, err := s.OfferedModels(ctx, 10*time.Minute)
		require.NoError(t, err)
		require.Empty(t, models)
		_, err = s.TouchAgent(ctx, "gpu-1", []engines.Caps{{Name: "openai", Models: []string{"whisper-1", "large-v3"}, Languages: []string{"en"}}}, "v1", store.Slots{})
		require.NoError(t, err)
		_, err = s.TouchAgent(ctx, "gpu-2", []engines.Caps{{Name: "openai", Models: []string{"large-v3"}, Translate: true, Prompt: true},
			{Name: "sphinx"}}, "v1", store.Slots{})
		require.NoError(t, err)
		models, err = s.OfferedModels(ctx, 10*time.Minute)
		require.NoError(t, err)
		var got []string
		for _, m := range models {
			got = append(got, fmt.Sprintf("%s %s %v %v %v", m.Name, m.Model, m.Languages, m.Translate, m.Prompt))
			require.False(t, m.FirstSeen.IsZero())
		}
		require.Equal(t, []string{"openai large-v3 [] true true", "openai whisper-1 [en] false false", "sphinx  [] false false"}, got,
			"large-v3 on gpu-2 recognises any language and translates")
		models, err = s.OfferedModels(ctx, -time.Minute)
		require.NoError(t, err)
		require.Empty(t, models)
	})
}
