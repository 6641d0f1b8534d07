package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/render"
	"github.com/ytcaption/ytcaption/core/internal/store"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// succeededWithWords makes a succeeded job of the test user's whose segments
// have word timings, as an engine's would.
func succeededWithWords(t *testing.T, a *testAPI) string {
	t.Helper()
	ctx := context.Background()
	j, err := a.store.CreateJob(ctx, store.NewJob{UserID: a.user.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	c, ok, err := a.store.ClaimQueued(ctx, "core-1", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, j.ID, c.ID)
	segs := []job.Segment{{Seq: 0, StartMS: 1000, EndMS: 4000, Text: "one two three", Words: []job.Word{
		{StartMS: 1000, EndMS: 1500, Text: "one"}, {StartMS: 2000, EndMS: 2250, Text: "two"}, {StartMS: 2250, EndMS: 4000, Text: "three"}}}}
	require.NoError(t, a.store.CompleteFromCaptions(ctx, c.ID, c.Epoch, store.Media{Duration: time.Minute}, "en", job.FromCaptions, segs))
	return j.ID
}

// TestGetTranscriptServesEveryFormat: every format the proto names is
// served with its content type, karaoke reaches the renderer for ASS and
// WebVTT, and is refused with invalid_argument for the rest.
func TestGetTranscriptServesEveryFormat(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	id := succeededWithWords(t, a)
	ctx := context.Background()
	get := func(f ytcaptionv1.TranscriptFormat, karaoke bool) (*ytcaptionv1.GetTranscriptResponse, error) {
		resp, err := a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: id, Format: f, Karaoke: karaoke}))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}
	for n := range ytcaptionv1.TranscriptFormat_name {
		f := ytcaptionv1.TranscriptFormat(n)
		want, ok := formats[f]
		require.True(t, ok, "%v has no renderer", f)
		resp, err := get(f, false)
		require.NoError(t, err, f)
		require.Equal(t, want.ContentType(), resp.GetContentType(), f)
		require.Contains(t, string(resp.GetContent()), "two", f)
		_, err = get(f, true)
		if want == render.ASS || want == render.VTT {
			require.NoError(t, err, f)
		} else {
			require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "karaoke with %v", f)
		}
	}
	resp, err := get(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_ASS, true)
	require.NoError(t, err)
	require.Contains(t, string(resp.GetContent()), `{\kf50}one {\k50}{\kf25}two {\kf175}three`)
	resp, err = get(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT, true)
	require.NoError(t, err)
	require.Contains(t, string(resp.GetContent()), "one <00:00:02.000>two <00:00:02.250>three\n")
	resp, err = get(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT, false)
	require.NoError(t, err)
	require.False(t, strings.Contains(string(resp.GetContent()), "<"), "plain WebVTT is unchanged")
}
