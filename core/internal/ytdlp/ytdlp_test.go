package ytdlp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/mediaurl"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/waittest"
)

const clip = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"

func TestArgsEndWithSeparatorAndURL(t *testing.T) {
	t.Parallel()
	d := New(Config{CookiesFile: "/etc/ytcaption/cookies.txt", Proxy: "socks5://127.0.0.1:1080"})
	url := "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
	args := d.Args("/tmp/job", url)
	require.Equal(t, []string{"--", url}, args[len(args)-2:], "-- then the canonical URL, last")
	require.Equal(t, 1, strings.Count(strings.Join(args, " "), " -- "), "one separator")
	for _, want := range [][]string{
		{"--ignore-config"}, {"--ies", mediaurl.Extractors()}, {"--no-playlist"}, {"-f", formats}, {"--downloader", "native"}, {"--max-filesize", "500M"},
		{"-P", "/tmp/job"}, {"-o", "%(id)s.%(ext)s"}, {"--write-info-json"},
		{"--break-match-filters", "!is_live & live_status!=?is_upcoming"}, {"--match-filters", "duration<=?14400"},
		{"--cookies", "/tmp/job/cookies.txt"}, // the per-job copy, never the original
	} {
		i := slices.Index(args, want[0])
		require.GreaterOrEqual(t, i, 0, want[0])
		require.Equal(t, want, args[i:i+len(want)])
	}
	require.NotContains(t, args, "/etc/ytcaption/cookies.txt")
	require.NotContains(t, args, "socks5://127.0.0.1:1080", "yt-dlp gets the egress proxy; the outbound one is behind it")
	require.NotContains(t, args, "--proxy", "run adds the egress proxy")
	require.NotContains(t, strings.Join(args, ","), "generic", "the generic extractor is opt-in")
	require.Contains(t, strings.Join(New(Config{Generic: true}).Args("/tmp/job", url), " "), "--ies "+mediaurl.Extractors()+",generic,html5 ")
}

// fakeYtDlp writes a script standing in for yt-dlp that records its argv, one
// argument per line, and behaves like a successful download.
func fakeYtDlp(t *testing.T) (bin, argvFile string) {
	t.Helper()
	dir := t.TempDir()
	argvFile = filepath.Join(dir, "argv")
	bin = filepath.Join(dir, "yt-dlp")
	script := `#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done > "` + argvFile + `"
while [ $# -gt 0 ]; do
  case "$1" in
    -P) out="$2"; shift ;;
    --print-to-file) pathfile="$3"; shift 2 ;;
  esac
  shift
done
printf 'RIFFfakeaudio' > "$out/dQw4w9WgXcQ.m4a"
printf '{"id":"dQw4w9WgXcQ","title":"Never; $(rm -rf /) Gonna","duration":212.5}' > "$out/dQw4w9WgXcQ.info.json"
printf '%s\n' "$out/dQw4w9WgXcQ.m4a" >> "$pathfile"
echo "[youtube] dQw4w9WgXcQ: Downloading webpage"
`
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, argvFile
}

func TestDownloadPassesExactlyArgsWithoutAShell(t *testing.T) {
	t.Parallel()
	bin, argvFile := fakeYtDlp(t)
	cookies := filepath.Join(t.TempDir(), "cookies.txt")
	require.NoError(t, os.WriteFile(cookies, []byte("# Netscape HTTP Cookie File\n"), 0o600))
	d := New(Config{Binary: bin, CookiesFile: cookies})
	dir := t.TempDir()
	// Shell metacharacters must reach yt-dlp as one inert argument.
	url := "https://www.youtube.com/watch?v=dQw4w9WgXcQ;touch${IFS}pwned"
	r, err := d.Download(context.Background(), dir, url)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "dQw4w9WgXcQ.m4a"), r.Path)
	require.Equal(t, "Never; $(rm -rf /) Gonna", r.Title)
	require.Equal(t, 212500*time.Millisecond, r.Duration)

	got, err := os.ReadFile(argvFile)
	require.NoError(t, err)
	argv := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	require.Equal(t, "--proxy", argv[0], "every connection through the egress proxy")
	require.Regexp(t, `^http://127\.0\.0\.1:\d+$`, argv[1])
	require.Equal(t, d.Args(dir, url), argv[2:])
	_, err = os.Stat(filepath.Join(dir, "pwned"))
	require.True(t, os.IsNotExist(err), "no shell interpreted the URL")
	_, err = os.Stat(filepath.Join(dir, "cookies.txt"))
	require.NoError(t, err, "cookies copied into the job dir")
}

// TestRealYtDlpAgainstLoopback drives the installed yt-dlp with its generic
// extractor against a local server: the real binary, arguments and exit codes.
func TestRealYtDlpAgainstLoopback(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(clip))))
	defer srv.Close()
	d := New(Config{Extractors: "generic", Policy: egress.Policy{AllowPrivate: true}})

	r, err := d.Download(context.Background(), t.TempDir(), srv.URL+"/"+filepath.Base(clip))
	require.NoError(t, err)
	st, err := os.Stat(r.Path)
	require.NoError(t, err)
	want, _ := os.Stat(clip)
	require.Equal(t, want.Size(), st.Size())

	_, err = d.Download(context.Background(), t.TempDir(), srv.URL+"/missing.wav")
	require.Equal(t, job.CodeSourceNotFound, job.CodeOf(err), "%v", err)

	small := New(Config{Extractors: "generic", MaxFileSize: "1K", Policy: egress.Policy{AllowPrivate: true}})
	_, err = small.Download(context.Background(), t.TempDir(), srv.URL+"/"+filepath.Base(clip))
	require.Equal(t, job.CodeMediaTooLarge, job.CodeOf(err), "%v", err)
}

func TestCancelKillsYtDlp(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/wav")
		w.Header().Set("Content-Length", "100000000")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := New(Config{Extractors: "generic", Policy: egress.Policy{AllowPrivate: true}}).Download(ctx, t.TempDir(), srv.URL+"/slow.wav")
		done <- err
	}()
	require.ErrorIs(t, waittest.Recv(t, done, 20*time.Second, "yt-dlp still running after the cancel"), context.Canceled)
}

// TestClassify uses yt-dlp's and YouTube's real messages.
func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		exit      int
		stderr    string
		code      string
		retryable bool
	}{
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. This helps protect our community. Learn more", job.CodeBotCheck, false},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you're not a bot. Use --cookies-from-browser or --cookies", job.CodeBotCheck, false},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests", job.CodeRateLimited, true},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: This content isn't available, try again later.", job.CodeRateLimited, true},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video", job.CodePrivateVideo, false},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age. This video may be inappropriate for some users.", job.CodeAgeRestricted, false},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable", job.CodeVideoUnavailable, false},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video has been removed by the uploader", job.CodeVideoUnavailable, false},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: The uploader has not made this video available in your country", job.CodeGeoBlocked, false},
		{1, "ERROR: [vimeo] 76979871: This video is not available from your location due to geo restriction", job.CodeGeoBlocked, false},
		{1, "ERROR: [instagram] Cx1: Requested content is not available, rate-limit reached or login required. Use --cookies, --cookies-from-browser, --username and --password, --netrc-cmd, or --netrc (instagram) to provide account credentials", job.CodeLoginRequired, false},
		{1, "ERROR: [twitter] 1620000000000000000: NSFW tweet requires authentication. Use --cookies, --cookies-from-browser, --username and --password, --netrc-cmd, or --netrc (twitter) to provide account credentials", job.CodeLoginRequired, false},
		{1, "ERROR: [vimeo] 76979871: This video is only available for registered users", job.CodeLoginRequired, false},
		{1, "ERROR: Unsupported URL: https://example.com/page", job.CodeInvalidURL, false},
		{1, "ERROR: [generic] talk: Requested format is not available. Use --list-formats for a list of available formats", job.CodeDownloadFailed, false},
		// yt-dlp 2023.03.04's words for the two filters.
		{101, "[download] Lofi Radio does not pass filter (!is_live & live_status!=?is_upcoming), skipping ..\nERROR: Encountered a video that did not match filter, stopping due to --break-match-filter", job.CodeLiveNotSupported, false},
		{0, "[download] Never Gonna does not pass filter (duration<=?14400), skipping ..", job.CodeTooLong, false},
		{0, "[download] File is larger than max-filesize (95724 bytes > 1024 bytes). Aborting.", job.CodeMediaTooLarge, false},
		{1, "ERROR: unable to download video data: HTTP Error 403: Forbidden", job.CodeSourceForbidden, true},
		{1, "ERROR: [generic] None: Unable to download webpage: HTTP Error 404: File not found", job.CodeSourceNotFound, false},
		{1, "ERROR: [youtube] dQw4w9WgXcQ: Unable to download webpage: <urlopen error [Errno -3] Temporary failure in name resolution>", job.CodeDownloadFailed, true},
		{2, "yt-dlp: error: no such option: --no-plugin-dirs", job.CodeDownloadFailed, false},
	} {
		e := Classify(tc.exit, tc.stderr, 4*time.Hour)
		require.Equal(t, tc.code, e.Code, tc.stderr)
		require.Equal(t, tc.retryable, e.Retryable, tc.stderr)
		require.NotEmpty(t, e.Message)
	}
}

func TestVersionOfTheRealYtDlp(t *testing.T) {
	t.Parallel()
	v, err := Version(context.Background(), "yt-dlp")
	require.NoError(t, err, "install yt-dlp (make deps)")
	require.Regexp(t, `^\d{4}\.\d{2}\.\d{2}`, v)
	_, err = Version(context.Background(), filepath.Join(t.TempDir(), "no-yt-dlp"))
	require.Error(t, err)
}
