package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// siteMedia is what yt-dlp says of a YouTube video.
var siteMedia = store.Media{
	Title: "Never Gonna Give You Up", Uploader: "Rick Astley", Duration: 212 * time.Second, AudioKey: "audio/x.wav",
	Site: "youtube", SiteID: "dQw4w9WgXcQ", UploadDate: "2009-10-25",
	Thumbnail: "https://i.ytimg.com/vi/dQw4w9WgXcQ/maxresdefault.jpg", WebpageURL: "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
}

func requireSiteMedia(t *testing.T, got job.Job) {
	t.Helper()
	require.Equal(t, []string{"youtube", "dQw4w9WgXcQ", "2009-10-25", siteMedia.Thumbnail, siteMedia.WebpageURL},
		[]string{got.MediaSite, got.MediaSiteID, got.MediaUploadDate, got.MediaThumbnail, got.MediaWebpageURL})
	require.Equal(t, siteMedia.Title, got.MediaTitle)
	require.Equal(t, siteMedia.Uploader, got.MediaUploader)
}

// TestEveryStageRecordsWhatTheSiteSays: the site's fields of the media are
// stored wherever the download stage ends — ready for a gpu-node, split into
// chunks, completed from captions — and copied with a cached transcript, and
// every read of the job returns them.
func TestEveryStageRecordsWhatTheSiteSays(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		claim := func() job.Job {
			t.Helper()
			create(t, s, u)
			c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
			require.NoError(t, err)
			require.True(t, ok)
			return c
		}

		ready := claim()
		require.NoError(t, s.MarkReady(ctx, ready.ID, ready.Epoch, siteMedia))
		got, err := s.GetJob(ctx, u.ID, ready.ID)
		require.NoError(t, err)
		requireSiteMedia(t, got)
		jobs, _, err := s.ListJobs(ctx, u.ID, 10, "")
		require.NoError(t, err)
		requireSiteMedia(t, jobs[0])

		chunked := claim()
		require.NoError(t, s.SplitIntoChunks(ctx, chunked.ID, chunked.Epoch, siteMedia,
			[]store.Chunk{{AudioKey: "audio/0", OffsetMS: 0, Duration: 1000}, {AudioKey: "audio/1", OffsetMS: 1000, Duration: 1000}}))
		got, err = s.GetJob(ctx, u.ID, chunked.ID)
		require.NoError(t, err)
		requireSiteMedia(t, got)

		captioned := claim()
		segs := []job.Segment{{Seq: 0, StartMS: 0, EndMS: 900, Text: "one"}}
		require.NoError(t, s.CompleteFromCaptions(ctx, captioned.ID, captioned.Epoch, siteMedia, "en", job.FromCaptions, segs))
		got, err = s.GetJob(ctx, u.ID, captioned.ID)
		require.NoError(t, err)
		requireSiteMedia(t, got)

		// The same media and options again: the cache copies the donor's.
		cached := claim()
		hit, err := s.CompleteFromCache(ctx, cached.ID, cached.Epoch)
		require.NoError(t, err)
		require.True(t, hit)
		got, err = s.GetJob(ctx, u.ID, cached.ID)
		require.NoError(t, err)
		requireSiteMedia(t, got)

		// A retry records what the new download found, blanks included.
		again := claim()
		require.NoError(t, s.MarkReady(ctx, again.ID, again.Epoch, store.Media{Title: "plain", AudioKey: "audio/y.wav"}))
		got, err = s.GetJob(ctx, u.ID, again.ID)
		require.NoError(t, err)
		require.Empty(t, got.MediaSite+got.MediaSiteID+got.MediaUploadDate+got.MediaThumbnail+got.MediaWebpageURL)
	})
}
