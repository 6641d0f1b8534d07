package mediaurl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

func TestBatchSourcesAreCanonical(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs":              "https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
		"https://m.youtube.com/watch?v=dQw4w9WgXcQ&list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs&t=3": "https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
		"https://www.youtube.com/@somebody":                                                     "https://www.youtube.com/@somebody/videos",
		"https://www.youtube.com/@somebody/streams":                                             "https://www.youtube.com/@somebody/streams",
		"https://youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw/":                                 "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw/videos",
		"https://www.youtube.com/c/GoogleDevelopers/videos":                                     "https://www.youtube.com/c/GoogleDevelopers/videos",
		"https://www.youtube.com/user/somebody":                                                 "https://www.youtube.com/user/somebody/videos",
		"https://talks.example.org/2024/index.html#top":                                         "https://talks.example.org/2024/index.html",
	} {
		src, err := ParseBatch(raw)
		require.NoError(t, err, raw)
		require.Equal(t, want, src.URL, raw)
	}
}

func TestBatchSourceRejections(t *testing.T) {
	t.Parallel()
	for raw, msg := range map[string]string{
		"https://www.youtube.com/watch?v=dQw4w9WgXcQ":      "POST /v1/jobs",
		"https://youtu.be/dQw4w9WgXcQ":                     "POST /v1/jobs",
		"https://www.youtube.com/playlist?list=bad!id":     "not a YouTube playlist id",
		"https://www.youtube.com/channel/UCshort":          "not a playlist",
		"https://www.youtube.com/@a/b/c":                   "not a playlist",
		"https://www.youtube.com/":                         "not a playlist",
		"ftp://example.com/list":                           "only http and https",
		"https://user:pw@www.youtube.com/@somebody":        "credentials",
		"https://example.com/" + strings.Repeat("a", 2100): "longer than",
		"https://www.youtube.com/@some body":               "spaces",
		"":                                                 "required",
	} {
		_, err := ParseBatch(raw)
		require.Equal(t, job.CodeInvalidURL, job.CodeOf(err), raw)
		require.ErrorContains(t, err, msg, raw)
	}
	// /v1/jobs still refuses a playlist, pointing at batches.
	_, err := Parse("https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs")
	require.ErrorContains(t, err, "POST /v1/batches")
}

func FuzzParseBatch(f *testing.F) {
	f.Add("https://www.youtube.com/@somebody")
	f.Add("https://www.youtube.com/playlist?list=PL1")
	f.Fuzz(func(t *testing.T, raw string) {
		src, err := ParseBatch(raw)
		if err != nil {
			require.Equal(t, job.CodeInvalidURL, job.CodeOf(err))
			return
		}
		// Whatever is accepted is an http(s) URL yt-dlp can be given after "--".
		require.True(t, strings.HasPrefix(src.URL, "https://") || strings.HasPrefix(src.URL, "http://"), src.URL)
		require.LessOrEqual(t, len(src.URL), 2*maxLen)
	})
}
