package ytdlp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
)

const youtubeInfo = "testdata/youtube.info.json"

// editInfo returns the fixture at path changed by edit, as a file in a temp dir.
func editInfo(t *testing.T, path string, edit func(map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	edit(m)
	b, err = json.Marshal(m)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "edited.info.json")
	require.NoError(t, os.WriteFile(out, b, 0o600))
	return out
}

func listingOf(t *testing.T, path string) Listing {
	t.Helper()
	info, err := loadInfo(path)
	require.NoError(t, err)
	return info.tracks()
}

// TestListingOfAYouTubeVideo reads a YouTube info JSON as yt-dlp (2025)
// writes it: two tracks a person made, the automatic track listed as "en"
// and "en-orig", and its machine translations into eighteen languages.
func TestListingOfAYouTubeVideo(t *testing.T) {
	t.Parallel()
	l := listingOf(t, youtubeInfo)
	require.Equal(t, Result{
		Title: "Rick Astley - Never Gonna Give You Up (Official Music Video)", Uploader: "Rick Astley", Duration: 212 * time.Second,
		Site: "youtube", SiteID: "dQw4w9WgXcQ", WebpageURL: "https://www.youtube.com/watch?v=dQw4w9WgXcQ", UploadDate: "2009-10-25",
		Thumbnail: "https://i.ytimg.com/vi_webp/dQw4w9WgXcQ/maxresdefault.webp",
	}, l.Result)
	require.Equal(t, "en", l.Language)
	require.Equal(t, []Track{
		{Language: "de-DE", Name: "German (Germany)", Translatable: true},
		{Language: "en", Name: "English", Translatable: true, Original: true},
		// One automatic track — the original, not its translations.
		{Language: "en", Name: "English", Automatic: true, Translatable: true, Original: true},
	}, l.Tracks, "live_chat is chat replay, not captions")
}

// TestListingOfAnOlderYtDlp: yt-dlp versions that put tlang on every
// automatic track, the original too, and list no "-orig": the video's
// language says which is the original.
func TestListingOfAnOlderYtDlp(t *testing.T) {
	t.Parallel()
	path := editInfo(t, youtubeInfo, func(m map[string]any) {
		auto := m["automatic_captions"].(map[string]any)
		delete(auto, "en-orig")
		for _, f := range auto["en"].([]any) {
			f.(map[string]any)["url"] = f.(map[string]any)["url"].(string) + "&tlang=en"
		}
		delete(m, "subtitles")
	})
	l := listingOf(t, path)
	require.Equal(t, []Track{{Language: "en", Name: "English", Automatic: true, Translatable: true, Original: true}}, l.Tracks)

	// Without a language there is no telling the original from a
	// translation: none is listed rather than a guess.
	path = editInfo(t, path, func(m map[string]any) { delete(m, "language") })
	l = listingOf(t, path)
	require.Empty(t, l.Tracks)
	require.Empty(t, l.Language)
}

// TestListingOfAnotherSite: no translations, no language; an automatic
// track there is in the language spoken.
func TestListingOfAnotherSite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.info.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"id":"1234","extractor":"vimeo","extractor_key":"Vimeo","title":"A talk",
		"webpage_url":"https://vimeo.com/1234","upload_date":"20240229","thumbnail":"javascript:alert(1)",
		"subtitles":{"fr":[{"ext":"vtt","url":"https://vimeo.com/t/fr.vtt"}]},
		"automatic_captions":{"en-x-autogen":[{"ext":"vtt","url":"https://vimeo.com/t/en.vtt"}]}}`), 0o600))
	l := listingOf(t, path)
	require.Equal(t, "vimeo", l.Site)
	require.Equal(t, "2024-02-29", l.UploadDate)
	require.Empty(t, l.Thumbnail, "only http(s) thumbnails")
	require.Equal(t, "en-x-autogen", l.Language, "the speech recognition's language is the one spoken")
	require.Equal(t, []Track{
		{Language: "fr"},
		{Language: "en-x-autogen", Automatic: true, Original: true},
	}, l.Tracks)
}

func TestInfoStringsAreCheckedAndCapped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://i.ytimg.com/vi/x/hq.jpg", "https://i.ytimg.com/vi/x/hq.jpg"},
		{"http://example.com/a.png", "http://example.com/a.png"},
		{"javascript:alert(1)", ""},
		{"data:image/png;base64,AAAA", ""},
		{"ftp://example.com/a.png", ""},
		{"https://user:pw@example.com/a.png", ""},
		{"https:///a.png", ""},
		{"https://example.com/a b.png", ""},
		{"https://example.com/" + strings.Repeat("a", maxURLBytes), ""},
	} {
		require.Equal(t, tc.want, webURL(tc.in), tc.in)
	}
	for _, tc := range []struct{ in, want string }{
		{"20091025", "2009-10-25"}, {"20240229", "2024-02-29"}, {"20230229", ""}, {"20231301", ""},
		{"2009-10-25", ""}, {"", ""}, {"00010101", ""}, {"200910251", ""},
	} {
		require.Equal(t, tc.want, uploadDate(tc.in), tc.in)
	}
	for _, tc := range []struct{ in, want string }{
		{"Youtube", "youtube"}, {"Generic", "generic"}, {"youtube:tab", "youtube:tab"}, {"Evil Site", ""},
		{"<script>", ""}, {strings.Repeat("a", maxSiteBytes+1), ""},
	} {
		require.Equal(t, tc.want, site(tc.in), tc.in)
	}
	require.Equal(t, "a b c", text("a\n b\x00\tc", 10))
	require.Equal(t, "ééé", text("éééé", 3), "runes, not bytes")
}

func TestLoadInfoIsLaxAboutFieldsAndBoundedInSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd.info.json")
	require.NoError(t, os.WriteFile(odd, []byte(`{"id":7,"title":{"x":1},"duration":"long","upload_date":null,
		"subtitles":{"en":"not a list","de":[{"ext":1,"url":2}],"../x":[{"ext":"vtt"}]},"automatic_captions":[]}`), 0o600))
	info, err := loadInfo(odd)
	require.NoError(t, err, "a field of the wrong type is empty, not a failure")
	l := info.tracks()
	require.Equal(t, Result{}, l.Result)
	require.Equal(t, []Track{{Language: "de"}}, l.Tracks)

	big := filepath.Join(dir, "big.info.json")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(MaxInfoBytes+1))
	require.NoError(t, f.Close())
	_, err = loadInfo(big)
	require.ErrorContains(t, err, "larger than 16 MiB")
	r, _ := readInfo(big)
	require.Equal(t, Result{}, r)

	require.NoError(t, os.WriteFile(big, []byte(`{"title":"x"`), 0o600))
	_, err = loadInfo(big)
	require.Error(t, err)
}

func TestOwnLanguage(t *testing.T) {
	t.Parallel()
	en := Track{Language: "en", Original: true}
	enGB := Track{Language: "en-GB", Original: true}
	de := Track{Language: "de"}
	autoEn := Track{Language: "en", Automatic: true, Original: true}
	for _, tc := range []struct {
		name      string
		l         Listing
		automatic bool
		want      Track
		ok        bool
	}{
		{"the exact language", Listing{Language: "en", Tracks: []Track{de, enGB, en, autoEn}}, false, en, true},
		{"a regional variant", Listing{Language: "en", Tracks: []Track{de, enGB, autoEn}}, false, enGB, true},
		{"the only human track", Listing{Tracks: []Track{de, autoEn}}, false, de, true},
		{"the only human track, another language", Listing{Language: "en", Tracks: []Track{de, autoEn}}, true, de, true},
		{"two tracks, no language: no guess", Listing{Tracks: []Track{de, en}}, false, Track{}, false},
		{"automatic only when allowed", Listing{Language: "en", Tracks: []Track{autoEn}}, false, Track{}, false},
		{"automatic", Listing{Language: "en", Tracks: []Track{autoEn}}, true, autoEn, true},
		{"nothing", Listing{}, true, Track{}, false},
	} {
		got, ok := OwnLanguage(tc.l, tc.automatic)
		require.Equal(t, tc.ok, ok, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

// fakeSite writes a script standing in for yt-dlp that appends its argv to a
// file (one argument a line, a blank line after each run) and acts out body,
// a shell fragment run with $out set to the -P directory, $load to
// --load-info-json's file and $langs to --sub-langs.
func fakeSite(t *testing.T, body string) (bin, argvFile string) {
	t.Helper()
	dir := t.TempDir()
	argvFile = filepath.Join(dir, "argv")
	bin = filepath.Join(dir, "yt-dlp")
	abs, err := filepath.Abs("testdata")
	require.NoError(t, err)
	script := `#!/bin/sh
testdata='` + abs + `'
{ for a in "$@"; do printf '%s\n' "$a"; done; echo; } >> "` + argvFile + `"
load=; langs=
while [ $# -gt 0 ]; do
  case "$1" in
    -P) out="$2"; shift ;;
    --load-info-json) load="$2"; shift ;;
    --sub-langs) langs="$2"; shift ;;
  esac
  shift
done
` + body + "\n"
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, argvFile
}

// runs reads the argument lists the fake was run with.
func runs(t *testing.T, argvFile string) [][]string {
	t.Helper()
	b, err := os.ReadFile(argvFile)
	require.NoError(t, err)
	var out [][]string
	for _, r := range strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n") {
		out = append(out, strings.Split(r, "\n"))
	}
	return out
}

func TestListCaptionsReadsTheInfoJSONWithoutDownloading(t *testing.T) {
	t.Parallel()
	bin, argvFile := fakeSite(t, `cp "$testdata/youtube.info.json" "$out/dQw4w9WgXcQ.info.json"`)
	d := New(Config{Binary: bin})
	dir := t.TempDir()
	url := "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
	l, err := d.ListCaptions(context.Background(), dir, url)
	require.NoError(t, err)
	require.Equal(t, listingOf(t, youtubeInfo), l)

	argv := runs(t, argvFile)
	require.Len(t, argv, 1, "one extraction")
	require.True(t, slices.Equal(d.ListArgs(dir, url), argv[0][len(argv[0])-len(d.ListArgs(dir, url)):]), "%q", argv[0])
	require.Equal(t, []string{"--", url}, argv[0][len(argv[0])-2:])
	require.Contains(t, argv[0], "--skip-download")
	for _, a := range argv[0] {
		require.NotContains(t, []string{"--write-subs", "--write-auto-subs", "-f"}, a, "neither captions nor media")
	}
}

func TestListCaptionsFailuresAreTyped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, code string
	}{
		{"private", `echo "ERROR: [youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video" >&2; exit 1`, job.CodePrivateVideo},
		{"removed", `echo "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable" >&2; exit 1`, job.CodeVideoUnavailable},
		{"bot check", `echo "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot" >&2; exit 1`, job.CodeBotCheck},
		// A filter skips the video: exit 0 and no info JSON.
		{"too long", `echo "[download] Never Gonna does not pass filter (duration<=?14400), skipping .."`, job.CodeTooLong},
		{"nothing written", `echo "[youtube] dQw4w9WgXcQ: Downloading webpage"`, job.CodeDownloadFailed},
		{"too big", `truncate -s 17M "$out/dQw4w9WgXcQ.info.json"`, job.CodeDownloadFailed},
	} {
		bin, _ := fakeSite(t, tc.body)
		_, err := New(Config{Binary: bin}).ListCaptions(context.Background(), t.TempDir(), "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
		require.Equal(t, tc.code, job.CodeOf(err), "%s: %v", tc.name, err)
	}
}

// ownCaptionsSite is a fake YouTube: the first run writes the info JSON at
// info, the second (--load-info-json) the caption file it was asked for, from
// testdata's json3 files.
func ownCaptionsSite(t *testing.T, info string) (bin, argvFile string) {
	t.Helper()
	abs, err := filepath.Abs(info)
	require.NoError(t, err)
	return fakeSite(t, `if [ -z "$load" ]; then cp '`+abs+`' "$out/dQw4w9WgXcQ.info.json"; exit 0; fi
case "$langs" in
  en) cp "$testdata/manual.en.json3" "$out/dQw4w9WgXcQ.en.json3" ;;
  'en(-orig)?') cp "$testdata/auto.en.json3" "$out/dQw4w9WgXcQ.en-orig.json3" ;;
esac`)
}

func TestFetchCaptionsAutoTakesTheVideosOwnLanguage(t *testing.T) {
	t.Parallel()
	bin, argvFile := ownCaptionsSite(t, youtubeInfo)
	d := New(Config{Binary: bin})
	dir := t.TempDir()
	url := "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
	c, found, err := d.FetchCaptions(context.Background(), dir, url, "auto", false)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "en", c.Language, "the video's language, of the two tracks a person made")
	require.False(t, c.Automatic)
	require.Equal(t, []string{"And Mr. John Dashwood had then leisure to consider", "how much there might be prudently in his power"}, texts(c.Segments))
	require.Equal(t, "youtube", c.Site)
	require.Equal(t, "2009-10-25", c.UploadDate)

	argv := runs(t, argvFile)
	require.Len(t, argv, 2)
	require.Equal(t, []string{"--", url}, argv[0][len(argv[0])-2:], "the first run asks the site")
	require.NotContains(t, argv[1], url, "the second reads the first's info JSON")
	require.Equal(t, []string{"--load-info-json", filepath.Join(dir, "dQw4w9WgXcQ.info.json")}, argv[1][len(argv[1])-2:])
	i := slices.Index(argv[1], "--sub-langs")
	require.Equal(t, "en", argv[1][i+1], "one language, exactly")
	require.NotContains(t, argv[1], "--write-auto-subs")

	// A language asked for by name is what it was: "de" finds nothing here
	// (the video has de-DE, found by the prefix only in the files).
	bin, _ = ownCaptionsSite(t, youtubeInfo)
	c, found, err = New(Config{Binary: bin}).FetchCaptions(context.Background(), t.TempDir(), url, "de", false)
	require.NoError(t, err)
	require.False(t, found)
	require.Equal(t, "de", c.Language)
}

func TestFetchCaptionsAutoFallsBackToTheOriginalAutomaticTrack(t *testing.T) {
	t.Parallel()
	noHuman := editInfo(t, youtubeInfo, func(m map[string]any) { delete(m, "subtitles") })

	bin, argvFile := ownCaptionsSite(t, noHuman)
	_, found, err := New(Config{Binary: bin}).FetchCaptions(context.Background(), t.TempDir(), "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "auto", false)
	require.NoError(t, err)
	require.False(t, found, "no captions a person made, and automatic ones not wanted")
	require.Len(t, runs(t, argvFile), 1, "nothing to fetch after the extraction")

	bin, argvFile = ownCaptionsSite(t, noHuman)
	c, found, err := New(Config{Binary: bin}).FetchCaptions(context.Background(), t.TempDir(), "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "auto", true)
	require.NoError(t, err)
	require.True(t, found)
	require.True(t, c.Automatic)
	require.Equal(t, "en", c.Language, "en-orig is English")
	require.Equal(t, []string{"and mister john dashwood", "had then leisure", "to consider"}, texts(c.Segments))
	argv := runs(t, argvFile)
	require.Contains(t, argv[1], "--write-auto-subs")
}

// TestRealYtDlpListsAndFetchesOwnCaptions runs the installed yt-dlp's
// generic extractor against a page with HTML5 <track>s, served on loopback.
func TestRealYtDlpListsAndFetchesOwnCaptions(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it): the real-binary test of caption listing is skipped")
	}
	var mediaFetched, captionsFetched bool
	mux := http.NewServeMux()
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><head><title>Dashwood</title></head><body>
<video controls src="/clip.wav"><track kind="captions" srclang="en" label="English" src="/clip.en.vtt"></video></body></html>`))
	})
	mux.HandleFunc("/clip.en.vtt", func(w http.ResponseWriter, r *http.Request) {
		captionsFetched = true
		w.Header().Set("Content-Type", "text/vtt")
		_, _ = w.Write([]byte("WEBVTT\n\n00:00:00.310 --> 00:00:03.020\nand mister john dashwood\n"))
	})
	mux.HandleFunc("/clip.wav", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mediaFetched = true
		}
		http.ServeFile(w, r, clip)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	d := New(Config{Extractors: "generic,html5", Policy: egress.Policy{AllowPrivate: true}})

	l, err := d.ListCaptions(context.Background(), t.TempDir(), srv.URL+"/page.html")
	require.NoError(t, err)
	require.Equal(t, []Track{{Language: "en"}}, l.Tracks)
	require.Equal(t, srv.URL+"/page.html", l.WebpageURL)
	require.NotEmpty(t, l.Site)
	require.False(t, mediaFetched || captionsFetched, "a listing fetches neither media nor captions")

	c, found, err := d.FetchCaptions(context.Background(), t.TempDir(), srv.URL+"/page.html", "auto", false)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "en", c.Language, "the page's only track")
	require.Equal(t, []string{"and mister john dashwood"}, texts(c.Segments))
	require.False(t, mediaFetched, "captions come without the media")

	_, err = d.ListCaptions(context.Background(), t.TempDir(), srv.URL+"/missing.html")
	require.Equal(t, job.CodeSourceNotFound, job.CodeOf(err), "%v", err)
}
