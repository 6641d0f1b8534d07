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
}
