package ytdlp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/mediaurl"
	"github.com/ytcaption/ytcaption/internal/egress"
)

func TestEntriesArgsListWithoutDownloading(t *testing.T) {
	t.Parallel()
	args := strings.Join(New(Config{}).EntriesArgs("/tmp/b", "https://www.youtube.com/@x/videos", 50), " ")
	for _, want := range []string{"--yes-playlist", "--flat-playlist", "--simulate", "--playlist-end 50", "--ignore-config", "-- https://www.youtube.com/@x/videos"} {
		require.Contains(t, args, want)
	}
	require.NotContains(t, args, "--no-playlist")
	require.Contains(t, args, "--ies "+mediaurl.Extractors()+",youtube:tab,youtube:playlist ", "YouTube's list extractors, or a playlist has no extractor")
	require.True(t, strings.HasSuffix(args, "-- https://www.youtube.com/@x/videos"), "the URL comes last, after --")
}

func TestParseEntries(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		`{"id": "dQw4w9WgXcQ", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "title": "A", "ie_key": "Youtube", "_type": "url"}`,
		`{"id": "aaaaaaaaaaa", "url": "aaaaaaaaaaa", "title": "B", "ie_key": "Youtube", "upload_date": "20240102"}`,
		`{"id": "x", "url": "file:///etc/passwd", "title": "no URL to fetch"}`,
		`not json`,
		`{"id": "p-1", "url": "http://127.0.0.1/a.wav", "webpage_url": "http://127.0.0.1/p", "upload_date": "2024-01-02"}`,
		`{"id": "p-2", "url": "http://127.0.0.1/b.wav"}`,
	}, "\n")
	es, err := parseEntries(strings.NewReader(in), 3)
	require.NoError(t, err)
	require.Equal(t, []Entry{
		{ID: "dQw4w9WgXcQ", URL: "https://www.youtube.com/watch?v=dQw4w9WgXcQ", Title: "A"},
		{ID: "aaaaaaaaaaa", URL: "https://www.youtube.com/watch?v=aaaaaaaaaaa", Title: "B", UploadDate: "20240102"},
		{ID: "p-1", URL: "http://127.0.0.1/a.wav"}, // a date not YYYYMMDD is no date
	}, es)
}

// TestRealYtDlpListsAPageWithSeveralMedia runs the installed yt-dlp's
// generic extractor against a page with three <video>s on loopback: one
// entry each, in page order, capped at the limit, and no media fetched.
func TestRealYtDlpListsAPageWithSeveralMedia(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it)")
	}
	var mediaGets atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/talks.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><head><title>Talks</title></head><body>
<video controls src="/a.wav"></video>
<video controls src="/b.wav"></video>
<video controls><source src="/c.wav" type="audio/wav"></video></body></html>`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mediaGets.Add(1)
		}
		http.ServeFile(w, r, clip)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	d := New(Config{Extractors: "generic,html5", Policy: egress.Policy{AllowPrivate: true}})

	es, err := d.Entries(context.Background(), t.TempDir(), srv.URL+"/talks.html", 10)
	require.NoError(t, err)
	require.Len(t, es, 3)
	for i, name := range []string{"a", "b", "c"} {
		require.Equal(t, fmt.Sprintf("%s/%s.wav", srv.URL, name), es[i].URL)
	}
	es, err = d.Entries(context.Background(), t.TempDir(), srv.URL+"/talks.html", 2)
	require.NoError(t, err)
	require.Len(t, es, 2, "the limit")
	require.Zero(t, mediaGets.Load(), "a listing downloads nothing")

	// Through the egress policy like a download: loopback refused.
	_, err = New(Config{Extractors: "generic,html5"}).Entries(context.Background(), t.TempDir(), srv.URL+"/talks.html", 10)
	require.Error(t, err)
}

// TestRealYtDlpTakesAYouTubePlaylist: the real yt-dlp, given a listing's
// arguments, hands a playlist and a channel to YouTube's list extractors.
// There is no YouTube here, so the listing fails — at the network, not for
// want of an extractor (invalid_url).
func TestRealYtDlpTakesAYouTubePlaylist(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it)")
	}
	for _, u := range []string{"https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs", "https://www.youtube.com/@somebody/videos"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := New(Config{Proxy: "http://127.0.0.1:9"}).Entries(ctx, t.TempDir(), u, 5)
		cancel()
		require.Error(t, err, u)
		require.NotEqual(t, job.CodeInvalidURL, job.CodeOf(err), "%s: %v", u, err)
	}
}
