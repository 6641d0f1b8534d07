package ytdlp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
)

func texts(segs []job.Segment) []string {
	var out []string
	for _, s := range segs {
		out = append(out, s.Text)
	}
	return out
}

// checkSettled: numbered in order, each ending no later than the next starts,
// words inside their segment.
func checkSettled(t *testing.T, segs []job.Segment) {
	t.Helper()
	for i, s := range segs {
		require.Equal(t, i, s.Seq)
		require.LessOrEqual(t, s.StartMS, s.EndMS)
		if i+1 < len(segs) {
			require.LessOrEqual(t, s.EndMS, segs[i+1].StartMS, "segment %d overlaps the next", i)
		}
		for _, w := range s.Words {
			require.True(t, s.StartMS <= w.StartMS && w.StartMS <= w.EndMS && w.EndMS <= s.EndMS, "word %+v outside %+v", w, s)
		}
	}
}

func TestParseJSON3AutomaticCaptionsWithoutRollingRepeats(t *testing.T) {
	b, err := os.ReadFile("testdata/auto.en.json3")
	require.NoError(t, err)
	segs, err := ParseJSON3(b)
	require.NoError(t, err)
	require.Equal(t, []string{"and mister john dashwood", "had then leisure", "to consider"}, texts(segs))
	checkSettled(t, segs)
	require.Equal(t, int64(2640), segs[0].EndMS, "ends where the next line starts, not with the rolling window")
	require.Equal(t, []job.Word{{StartMS: 150, EndMS: 450, Text: "and"}, {StartMS: 450, EndMS: 840, Text: "mister"},
		{StartMS: 840, EndMS: 1170, Text: "john"}, {StartMS: 1170, EndMS: 2640, Text: "dashwood"}}, segs[0].Words)
}

func TestParseJSON3ManualCaptions(t *testing.T) {
	b, err := os.ReadFile("testdata/manual.en.json3")
	require.NoError(t, err)
	segs, err := ParseJSON3(b)
	require.NoError(t, err)
	require.Equal(t, []string{"And Mr. John Dashwood had then leisure to consider", "how much there might be prudently in his power"}, texts(segs))
	require.Empty(t, segs[0].Words, "a person's captions have no word timings")
	checkSettled(t, segs)

	_, err = ParseJSON3([]byte("<html>"))
	require.Error(t, err)
}

func TestParseVTTDropsRollingRepeatsAndMarkup(t *testing.T) {
	b, err := os.ReadFile("testdata/auto.en.vtt")
	require.NoError(t, err)
	segs := ParseVTT(b)
	require.Equal(t, []string{"and mister john dashwood", "had then leisure", "to consider & more"}, texts(segs))
	checkSettled(t, segs)
	require.Equal(t, int64(2640), segs[1].StartMS)
}

// TestRealYtDlpFetchesCaptionsWithoutTheMedia runs the real yt-dlp's generic
// extractor against a page with an HTML5 <track>, served on loopback.
func TestRealYtDlpFetchesCaptionsWithoutTheMedia(t *testing.T) {
	t.Parallel()
	vtt := "WEBVTT\n\n00:00:00.310 --> 00:00:03.020\nand mister john dashwood\n\n00:00:03.100 --> 00:00:06.980\nhad then leisure to consider\n"
	var mediaFetched bool
	mux := http.NewServeMux()
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><head><title>Dashwood</title></head><body>
<video controls src="/clip.wav"><track kind="captions" srclang="en" label="English" src="/clip.en.vtt"></video></body></html>`))
	})
	mux.HandleFunc("/clip.en.vtt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/vtt")
		_, _ = w.Write([]byte(vtt))
	})
	mux.HandleFunc("/clip.wav", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mediaFetched = true
		}
		http.ServeFile(w, r, clip)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	d := New(Config{Extractors: "generic,html5", Policy: egress.Policy{AllowPrivate: true}}) // html5: the <video> and <track> extractor

	c, found, err := d.FetchCaptions(context.Background(), t.TempDir(), srv.URL+"/page.html", "en", false)
	require.NoError(t, err)
	require.True(t, found)
	require.False(t, c.Automatic)
	require.Equal(t, []string{"and mister john dashwood", "had then leisure to consider"}, texts(c.Segments))
	require.False(t, mediaFetched, "captions come without the media")

	dir := t.TempDir()
	_, found, err = d.FetchCaptions(context.Background(), dir, srv.URL+"/page.html", "de", true)
	require.NoError(t, err)
	require.False(t, found, "no German captions")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		require.False(t, strings.HasSuffix(f, ".wav"), "no media downloaded: %v", files)
	}
}
