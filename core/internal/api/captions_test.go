package api

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// fakeYtDlp writes a stand-in for yt-dlp that appends the URL it was given
// to a file and acts the site by video: dQw4w9WgXcQ is ytdlp's YouTube
// fixture, privatevid1 is private, a .wav file is no page at all.
func fakeYtDlp(t *testing.T) (bin, urlsFile string) {
	t.Helper()
	dir := t.TempDir()
	fixture, err := filepath.Abs("../ytdlp/testdata/youtube.info.json")
	require.NoError(t, err)
	urlsFile = filepath.Join(dir, "urls")
	bin = filepath.Join(dir, "yt-dlp")
	script := `#!/bin/sh
while [ $# -gt 1 ]; do
  case "$1" in -P) out="$2"; shift ;; esac
  shift
done
printf '%s\n' "$1" >> '` + urlsFile + `'
case "$1" in
  *dQw4w9WgXcQ) cp '` + fixture + `' "$out/dQw4w9WgXcQ.info.json" ;;
  *privatevid1) echo "ERROR: [youtube] privatevid1: Private video. Sign in if you've been granted access to this video" >&2; exit 1 ;;
  *removedvid1) echo "ERROR: [youtube] removedvid1: Video unavailable. This video has been removed by the uploader" >&2; exit 1 ;;
  *.wav) echo "ERROR: Unsupported URL: $1" >&2; exit 1 ;;
  *) echo "ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found" >&2; exit 1 ;;
esac
`
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, urlsFile
}

func TestListCaptionsAsksTheSiteForTheCanonicalURL(t *testing.T) {
	t.Parallel()
	bin, urlsFile := fakeYtDlp(t)
	workDir := t.TempDir()
	a := newTestAPIWith(t, func(c *Config) { c.WorkDir = workDir }, func(d *Deps) { d.YtDlp = ytdlp.New(ytdlp.Config{Binary: bin}) })
	ctx := context.Background()

	resp, err := a.jobs.ListCaptions(ctx, connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "https://youtu.be/dQw4w9WgXcQ?t=42"}))
	require.NoError(t, err)
	got := resp.Msg
	require.Equal(t, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", got.GetUrl())
	require.Equal(t, "youtube", got.GetSite())
	require.Equal(t, "dQw4w9WgXcQ", got.GetId())
	require.Equal(t, "Rick Astley - Never Gonna Give You Up (Official Music Video)", got.GetTitle())
	require.Equal(t, "en", got.GetLanguage())
	var tracks []string
	for _, tr := range got.GetTracks() {
		tracks = append(tracks, strings.Join([]string{tr.GetLanguage(), tr.GetName(),
			map[bool]string{true: "automatic", false: "human"}[tr.GetAutomatic()],
			map[bool]string{true: "translatable", false: "-"}[tr.GetTranslatable()],
			map[bool]string{true: "original", false: "-"}[tr.GetOriginal()]}, " "))
	}
	require.Equal(t, []string{
		"de-DE German (Germany) human translatable -",
		"en English human translatable original",
		"en English automatic translatable original",
	}, tracks)
	m := got.GetMedia()
	require.Equal(t, 212.0, m.GetDurationSeconds())
	require.Equal(t, "Rick Astley", m.GetUploader())
	require.Equal(t, "2009-10-25", m.GetUploadDate())
	require.Equal(t, "https://i.ytimg.com/vi_webp/dQw4w9WgXcQ/maxresdefault.webp", m.GetThumbnailUrl())
	require.Equal(t, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", m.GetWebpageUrl())

	urls, err := os.ReadFile(urlsFile)
	require.NoError(t, err)
	require.Equal(t, "https://www.youtube.com/watch?v=dQw4w9WgXcQ\n", string(urls), "yt-dlp hears the canonical URL, not the submitted one")
	left, err := os.ReadDir(workDir)
	require.NoError(t, err)
	require.Empty(t, left, "the listing's temp dir is removed")
}

func TestListCaptionsRefusals(t *testing.T) {
	t.Parallel()
	bin, urlsFile := fakeYtDlp(t)
	a := newTestAPIWith(t, nil, func(d *Deps) { d.YtDlp = ytdlp.New(ytdlp.Config{Binary: bin}) })
	ctx := context.Background()
	for _, tc := range []struct {
		url    string
		code   connect.Code
		detail string
	}{
		{"", connect.CodeInvalidArgument, job.CodeInvalidURL},
		{"ftp://example.com/a.wav", connect.CodeInvalidArgument, job.CodeInvalidURL},
		{"https://www.youtube.com/playlist?list=PL123", connect.CodeInvalidArgument, job.CodeInvalidURL},
		{"https://www.youtube.com/watch?v=privatevid1", connect.CodePermissionDenied, job.CodePrivateVideo},
		{"https://www.youtube.com/watch?v=removedvid1", connect.CodeNotFound, job.CodeVideoUnavailable},
		{"http://127.0.0.1:1/gone.html", connect.CodeNotFound, job.CodeSourceNotFound},
	} {
		_, err := a.jobs.ListCaptions(ctx, connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: tc.url}))
		require.Equal(t, tc.code, connect.CodeOf(err), "%s: %v", tc.url, err)
		require.Equal(t, tc.detail, detail(t, err), tc.url)
	}
	urls, err := os.ReadFile(urlsFile)
	require.NoError(t, err)
	require.NotContains(t, string(urls), "ftp:", "an invalid URL never reaches yt-dlp")
	require.NotContains(t, string(urls), "playlist")

	// A media file no extractor takes has no tracks: an empty list.
	resp, err := a.jobs.ListCaptions(ctx, connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "http://127.0.0.1:1/talk.wav"}))
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:1/talk.wav", resp.Msg.GetUrl())
	require.Empty(t, resp.Msg.GetTracks())

	// Without yt-dlp the call is unavailable, and says so.
	off := newTestAPI(t, nil)
	_, err = off.jobs.ListCaptions(ctx, connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "https://youtu.be/dQw4w9WgXcQ"}))
	require.Equal(t, connect.CodeUnavailable, connect.CodeOf(err))
	require.Equal(t, job.CodeUnavailable, detail(t, err))
}

func TestListCaptionsChecksLiteralAddresses(t *testing.T) {
	t.Parallel()
	bin, urlsFile := fakeYtDlp(t)
	a := newTestAPIWith(t, func(c *Config) { c.AllowPrivateURLs = false }, func(d *Deps) { d.YtDlp = ytdlp.New(ytdlp.Config{Binary: bin}) })
	_, err := a.jobs.ListCaptions(context.Background(), connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "http://169.254.169.254/latest/meta-data"}))
	require.Equal(t, job.CodeInvalidURL, detail(t, err))
	_, err = os.Stat(urlsFile)
	require.True(t, os.IsNotExist(err), "yt-dlp never ran")
}

func TestJobsShowWhatTheSiteSaysOfTheirMedia(t *testing.T) {
	t.Parallel()
	p := JobToProto(job.Job{MediaTitle: "t", MediaDuration: time.Second, MediaUploader: "u", MediaSite: "vimeo", MediaSiteID: "1234",
		MediaUploadDate: "2024-02-29", MediaThumbnail: "https://i.vimeocdn.com/x.jpg", MediaWebpageURL: "https://vimeo.com/1234"})
	require.Equal(t, &ytcaptionv1.Media{Title: "t", DurationSeconds: 1, Uploader: "u", Site: "vimeo", SiteId: "1234", UploadDate: "2024-02-29",
		ThumbnailUrl: "https://i.vimeocdn.com/x.jpg", WebpageUrl: "https://vimeo.com/1234"}, p.GetMedia())
	require.Nil(t, JobToProto(job.Job{}).GetMedia(), "no media before the download")
}

// TestListCaptionsFloodIsRefusedPastItsBound: each listing runs yt-dlp for
// seconds, so a flood of them is refused with unavailable past maxListings
// running at once, rather than starting a yt-dlp per request.
func TestListCaptionsFloodIsRefusedPastItsBound(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	release, started := filepath.Join(dir, "release"), filepath.Join(dir, "started")
	bin := filepath.Join(dir, "yt-dlp")
	// A yt-dlp that hangs until the test lets it go, counting its starts.
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho x >> "+started+"\nwhile [ ! -e "+release+" ]; do sleep 0.05; done\nexit 1\n"), 0o755))
	a := newTestAPIWith(t, func(c *Config) { c.WorkDir = t.TempDir() }, func(d *Deps) { d.YtDlp = ytdlp.New(ytdlp.Config{Binary: bin}) })
	list := func() error {
		_, err := a.jobs.ListCaptions(context.Background(), connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "https://youtu.be/dQw4w9WgXcQ"}))
		return err
	}
	done := make(chan error, maxListings)
	for range maxListings {
		go func() { done <- list() }()
	}
	starts := func() int { b, _ := os.ReadFile(started); return strings.Count(string(b), "x") }
	require.Eventually(t, func() bool { return starts() == maxListings }, 30*time.Second, 10*time.Millisecond)

	err := list()
	require.Equal(t, connect.CodeUnavailable, connect.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "too many caption listings")
	require.Equal(t, maxListings, starts(), "no yt-dlp started for the refused one")

	require.NoError(t, os.WriteFile(release, nil, 0o600))
	for range maxListings {
		<-done
	}
}
