package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	agent "github.com/ytcaption/ytcaption/gpu-node"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/pgtest"
	"github.com/ytcaption/ytcaption/internal/redistest"
	"github.com/ytcaption/ytcaption/internal/wer"
)

const librivox = "/usr/share/pocketsphinx/test/data/librivox"

// maxDownload is the dev stack's size cap in these tests; the oversize case serves more.
const maxDownload = 4 << 20

type client struct {
	t    testing.TB
	base string
	key  string
}

func (c client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b
}

type jobJSON struct {
	ID               string  `json:"id"`
	Status           string  `json:"status"`
	URL              string  `json:"url"`
	CanonicalURL     string  `json:"canonical_url"`
	Progress         float64 `json:"progress"`
	CreatedAt        string  `json:"created_at"`
	FinishedAt       string  `json:"finished_at"`
	ReadyAt          string  `json:"ready_at"`
	Source           string  `json:"source"`
	DetectedLanguage string  `json:"detected_language"`
	TranscribedFrom  string  `json:"transcribed_from"`
	ReusedFrom       string  `json:"reused_from"`
	Task             string  `json:"task"`
	Chunks           int     `json:"chunks"`
	Media            *struct {
		Title           string  `json:"title"`
		DurationSeconds float64 `json:"duration_seconds"`
		Uploader        string  `json:"uploader"`
	} `json:"media"`
	Error *struct{ Code, Message string } `json:"error"`
}

func (c client) create(url string) jobJSON {
	c.t.Helper()
	code, b := c.do("POST", "/v1/jobs", map[string]string{"url": url, "language": "en"})
	require.Equal(c.t, http.StatusAccepted, code, string(b))
	var j jobJSON
	require.NoError(c.t, json.Unmarshal(b, &j))
	require.Equal(c.t, "queued", j.Status)
	return j
}

func (c client) get(id string) jobJSON {
	c.t.Helper()
	code, b := c.do("GET", "/v1/jobs/"+id, nil)
	require.Equal(c.t, http.StatusOK, code, string(b))
	var j jobJSON
	require.NoError(c.t, json.Unmarshal(b, &j))
	return j
}

// waitFor polls the job until cond holds or the deadline passes.
func (c client) waitFor(id string, limit time.Duration, cond func(jobJSON) bool) jobJSON {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		j := c.get(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s: condition not met within %s; last status %s", id, limit, j.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func terminal(j jobJSON) bool {
	return j.Status == "succeeded" || j.Status == "failed" || j.Status == "cancelled"
}

func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	require.NotEmpty(t, e.Error.Message, string(b))
	return e.Error.Code
}

// testStack is a running dev stack with handles on what tests reach into.
type testStack struct {
	Stack
	Config Config
	DBURL  string
	Redis  *redistest.Server // the edge's, private to the test
	Stop   func()            // stops the stack now (it also stops when the test ends)
}

// startStack runs the whole dev stack on free ports against a fresh database,
// bucket and Redis, and stops it when the test ends.
func startStack(t testing.TB, ytdlp string) testStack {
	t.Helper()
	return startStackWith(t, ytdlp, func(*Config) {})
}

// startStackWith is startStack with configure applied to the stack's Config.
func startStackWith(t testing.TB, ytdlp string, configure func(*Config)) testStack {
	t.Helper()
	minio := miniotest.Start(t)
	rds := redistest.Start(t)
	dbURL := pgtest.URL(t)
	cfg := Config{
		DataDir: t.TempDir(), EdgeAddr: "127.0.0.1:0", ConnectAddr: "127.0.0.1:0", CoreAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", PostgresURL: dbURL,
		S3Endpoint: minio.Endpoint, S3AccessKey: minio.AccessKey, S3SecretKey: minio.SecretKey,
		S3Bucket:         fmt.Sprintf("e2e-%d", time.Now().UnixNano()),
		MaxDownloadBytes: maxDownload,
		YtDlpBinary:      ytdlp,
		RedisURL:         rds.URL(),
		Lease:            6 * time.Second, HeartbeatInterval: 2 * time.Second,
	}
	configure(&cfg)
	s := runStack(t, cfg)
	s.Redis = rds
	return s
}

// startSingleBoxWith runs the stack as the single box does — SQLite and
// blob files in a fresh data directory, the edge's memory for limits and
// replays — with configure applied, and stops it when the test ends.
func startSingleBoxWith(t testing.TB, ytdlp string, configure func(*Config)) testStack {
	t.Helper()
	cfg := Config{
		DataDir: t.TempDir(), EdgeAddr: "127.0.0.1:0", ConnectAddr: "127.0.0.1:0", CoreAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		MaxDownloadBytes: maxDownload, YtDlpBinary: ytdlp, Lease: 6 * time.Second, HeartbeatInterval: 2 * time.Second,
	}
	configure(&cfg)
	return runStack(t, cfg)
}

// runStack runs the stack cfg describes until the test ends.
func runStack(t testing.TB, cfg Config) testStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan Stack, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, func(s Stack) { started <- s }) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			// Not require: FailNow's Goexit inside sync.OnceFunc panics
			// ("panic called with nil argument") and hides the error.
			assert.NoError(t, err, "the stack stopped with an error")
		case <-time.After(60 * time.Second):
			t.Error("the stack did not stop within 60 s")
		}
	})
	t.Cleanup(stop)
	select {
	case s := <-started:
		return testStack{Stack: s, Config: cfg, DBURL: cfg.PostgresURL, Stop: stop}
	case err := <-done:
		done <- nil // reported here: the cleanup's stop has nothing left to wait for
		t.Fatalf("stack exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("stack did not start within 60 s")
	}
	return testStack{}
}

// mediaServer serves test media on loopback, as a user's own web server would.
func mediaServer(t testing.TB) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	refs := map[string]string{}
	lines, err := os.ReadFile(filepath.Join(librivox, "transcription"))
	require.NoError(t, err, "install pocketsphinx-testdata (make deps)")
	re := regexp.MustCompile(`^<s> (.*) </s> \((.*)\)$`)
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		m := re.FindStringSubmatch(strings.TrimSpace(l))
		require.NotNil(t, m, l)
		refs[m[2]] = m[1]
		// A compressed format, as media on the web is.
		ffmpeg(t, "-i", filepath.Join(librivox, m[2]+".wav"), "-c:a", "libvorbis", filepath.Join(dir, m[2]+".ogg"))
	}
	// Long speech for the cancel test: the five clips, three times over.
	var list strings.Builder
	for range 3 {
		for id := range refs {
			fmt.Fprintf(&list, "file '%s'\n", filepath.Join(librivox, id+".wav"))
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "list.txt"), []byte(list.String()), 0o644))
	ffmpeg(t, "-f", "concat", "-safe", "0", "-i", filepath.Join(dir, "list.txt"), "-c:a", "libvorbis", filepath.Join(dir, "long.ogg"))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "notmedia.txt"), []byte("this is not media\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.ogg"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "huge.ogg"), bytes.Repeat([]byte{0x4f}, maxDownload+1<<20), 0o644))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL, refs
}

// hangingVideo is a video id the yt-dlp stand-in never finishes downloading.
const (
	hangingVideo = "HANGHANGHAN"
	captionsMan  = "CaptionsMan" // a person's English captions
	captionsAut  = "CaptionsAut" // YouTube's automatic English captions only
)

// fakeYtDlp writes a stand-in for yt-dlp — there is no YouTube here — that
// records its argv and "downloads" a LibriVox clip the way yt-dlp lays files
// out: <id>.<ext> and <id>.info.json in the -P dir, the path in --print-to-file.
// With --skip-download it writes captions as yt-dlp does, <id>.<lang>.json3:
// video captionsMan has English captions a person made, captionsAut only
// YouTube's automatic ones (written with --write-auto-subs), others none.
func fakeYtDlp(t *testing.T) (bin, argv string) {
	t.Helper()
	dir := t.TempDir()
	manual, err := filepath.Abs("../core/internal/ytdlp/testdata/manual.en.json3")
	require.NoError(t, err)
	automatic, err := filepath.Abs("../core/internal/ytdlp/testdata/auto.en.json3")
	require.NoError(t, err)
	argv = filepath.Join(dir, "argv")
	bin = filepath.Join(dir, "yt-dlp")
	clip := filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav")
	script := `#!/bin/sh
[ "$1" = "--version" ] && { echo 2099.01.01; exit 0; }
printf '%s\n' "$@" > "` + argv + `"
skip=; auto=
while [ $# -gt 0 ]; do
  case "$1" in
    -P) out="$2"; shift ;;
    --print-to-file) pathfile="$3"; shift 2 ;;
    --skip-download) skip=1 ;;
    --write-auto-subs) auto=1 ;;
    --load-info-json) info="$2"; shift ;;
  esac
  url="$1"; shift
done
id=$(printf '%s' "$url" | sed 's/.*v=//')
# A second run on the first's info JSON: the video is the one it names.
[ -n "$info" ] && id=$(basename "$info" .info.json)
if [ -n "$skip" ]; then
  case "$id" in
    ` + captionsMan + `)
      printf '{"id":"%s","title":"Captioned (fixture)","uploader":"ytcaption","duration":6.98,"subtitles":{"en":[{"ext":"json3"}]}}' "$id" > "$out/$id.info.json"
      cp "` + manual + `" "$out/$id.en.json3" ;;
    ` + captionsAut + `)
      printf '{"id":"%s","title":"Automatic (fixture)","duration":6.84,"automatic_captions":{"en":[{"ext":"json3"}]}}' "$id" > "$out/$id.info.json"
      [ -n "$auto" ] && cp "` + automatic + `" "$out/$id.en.json3" ;;
    *) printf '{"id":"%s","title":"No captions (fixture)","duration":2.99}' "$id" > "$out/$id.info.json" ;;
  esac
  exit 0
fi
# A video that never finishes downloading, for the cancel test.
[ "$id" = "` + hangingVideo + `" ] && while :; do sleep 0.1; done
cp "` + clip + `" "$out/$id.wav"
printf '{"id":"%s","title":"Never Gonna Give You Up (fixture)","uploader":"Rick Astley","duration":2.99}' "$id" > "$out/$id.info.json"
printf '%s\n' "$out/$id.wav" >> "$pathfile"
`
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, argv
}

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-nostdin", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	require.NoError(t, err, string(out))
}

// TestEndToEnd drives the public REST API of a real stack — edge, core and a
// gpu-node running pocketsphinx, on real Postgres, MinIO and ffmpeg — the way a
// user would.
func TestEndToEnd(t *testing.T) {
	media, refs := mediaServer(t)
	ytdlp, argv := fakeYtDlp(t)
	ts := startStack(t, ytdlp)
	stack, dbURL := ts.Stack, ts.DBURL
	api := client{t: t, base: stack.EdgeURL, key: stack.APIKey}

	t.Run("auth", func(t *testing.T) {
		code, b := client{t: t, base: stack.EdgeURL}.do("GET", "/v1/jobs", nil)
		require.Equal(t, http.StatusUnauthorized, code)
		require.Equal(t, "unauthorized", errorCode(t, b))
		code, b = client{t: t, base: stack.EdgeURL, key: "ytc_wrongwrongwrongwrongwrong"}.do("GET", "/v1/jobs", nil)
		require.Equal(t, http.StatusUnauthorized, code)
		require.Equal(t, "unauthorized", errorCode(t, b))
	})

	t.Run("invalid URLs are refused with invalid_url", func(t *testing.T) {
		for _, u := range []string{
			"ftp://example.com/a.mp3",
			"not a url",
			"https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
			"https://www.youtube.com/watch?v=short",
			"https://youtu.be/",
			"https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw",
		} {
			code, b := api.do("POST", "/v1/jobs", map[string]string{"url": u})
			require.Equal(t, http.StatusBadRequest, code, u)
			require.Equal(t, "invalid_url", errorCode(t, b), u)
		}
	})

	t.Run("the captions fast path takes a video's own captions without a GPU", func(t *testing.T) {
		create := func(id, source, lang string) jobJSON {
			t.Helper()
			code, b := api.do("POST", "/v1/jobs", map[string]string{"url": "https://youtu.be/" + id, "source": source, "language": lang})
			require.Equal(t, http.StatusAccepted, code, string(b))
			var j jobJSON
			require.NoError(t, json.Unmarshal(b, &j))
			return j
		}
		transcript := func(id string) string {
			t.Helper()
			code, b := api.do("GET", "/v1/jobs/"+id+"/transcript?format=txt", nil)
			require.Equal(t, http.StatusOK, code, string(b))
			return string(b)
		}

		j := api.waitFor(create(captionsMan, "auto", "en").ID, time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status, "%+v", j.Error)
		require.Equal(t, "captions", j.TranscribedFrom)
		require.Empty(t, j.ReadyAt, "never waited for a GPU")
		require.Equal(t, "Captioned (fixture)", j.Media.Title)
		require.Equal(t, "And Mr. John Dashwood had then leisure to consider\nhow much there might be prudently in his power\n", transcript(j.ID))

		j = api.waitFor(create(captionsAut, "captions", "en").ID, time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status, "%+v", j.Error)
		require.Equal(t, "automatic_captions", j.TranscribedFrom)
		require.Equal(t, "and mister john dashwood\nhad then leisure\nto consider\n", transcript(j.ID), "no rolling repeats")

		// "auto" does not settle for automatic captions: our engine transcribes.
		j = api.waitFor(create(captionsAut, "auto", "en").ID, 2*time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status, "%+v", j.Error)
		require.Equal(t, "speech", j.TranscribedFrom)
		require.NotEmpty(t, j.ReadyAt)

		j = api.waitFor(create("dQw4w9WgXcQ", "captions", "en").ID, time.Minute, terminal)
		require.Equal(t, "failed", j.Status)
		require.Equal(t, "captions_unavailable", j.Error.Code)

		// No language: the captions in the video's own, the only ones a person made.
		j = api.waitFor(create(captionsMan, "captions", "").ID, time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status, "%+v", j.Error)
		require.Equal(t, "captions", j.TranscribedFrom)
		require.Equal(t, "en", j.DetectedLanguage)

		for _, body := range []map[string]string{
			{"url": media + "/" + firstClip(refs) + ".ogg", "source": "captions", "language": "en"}, // a file has no captions
			{"url": "https://youtu.be/" + captionsMan, "source": "subtitles"},
		} {
			code, b := api.do("POST", "/v1/jobs", body)
			require.Equal(t, http.StatusBadRequest, code, "%v: %s", body, b)
			require.Equal(t, "invalid_argument", errorCode(t, b))
		}
	})

	t.Run("language, task and prompt are checked against what the engines can do", func(t *testing.T) {
		url := media + "/" + firstClip(refs) + ".ogg"
		// Core knows no engine, only what the gpu-nodes advertise: wait for
		// the stack's node to have called in (it does as it starts).
		require.Eventually(t, func() bool {
			_, b := api.do("POST", "/v1/jobs", map[string]string{"url": url, "engine": "sphinx", "language": "de"})
			return !strings.Contains(string(b), "no gpu-node has called in")
		}, time.Minute, 50*time.Millisecond)
		for _, tc := range []struct {
			body map[string]string
			code string
		}{
			{map[string]string{"url": url, "engine": "sphinx", "task": "translate"}, "unsupported_option"},
			{map[string]string{"url": url, "engine": "sphinx", "language": "de"}, "unsupported_option"},
			{map[string]string{"url": url, "engine": "sphinx", "prompt": "Dashwood"}, "unsupported_option"},
			{map[string]string{"url": url, "task": "summarise"}, "invalid_argument"},
			{map[string]string{"url": url, "prompt": strings.Repeat("x", 1001)}, "invalid_argument"},
		} {
			code, b := api.do("POST", "/v1/jobs", tc.body)
			require.Equal(t, http.StatusBadRequest, code, "%v: %s", tc.body["task"]+tc.body["language"], b)
			require.Equal(t, tc.code, errorCode(t, b), string(b))
		}
		// With no engine named too: what the stack's one gpu-node advertised
		// for its pocketsphinx — English only, no translation, no prompt —
		// decides, and the refusal says what is on offer.
		code, b := api.do("POST", "/v1/jobs", map[string]string{"url": url, "language": "de"})
		require.Equal(t, http.StatusBadRequest, code, string(b))
		require.Contains(t, string(b), `languages on offer: \"en\"`)
		code, b = api.do("POST", "/v1/jobs", map[string]string{"url": url + "?translate", "language": "de", "task": "translate", "prompt": "Dashwood"})
		require.Equal(t, http.StatusBadRequest, code, string(b))
		require.Equal(t, "unsupported_option", errorCode(t, b), string(b))
	})

	t.Run("YouTube URLs are canonicalised and fetched with yt-dlp", func(t *testing.T) {
		for _, u := range []string{
			"https://m.youtube.com/shorts/dQw4w9WgXcQ",
			"https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDdQw4w9WgXcQ",
		} {
			j := api.create(u)
			require.Equal(t, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", j.CanonicalURL, u)
			require.Equal(t, u, j.URL)
			code, b := api.do("DELETE", "/v1/jobs/"+j.ID, nil)
			require.Equal(t, http.StatusOK, code, string(b))
		}
		j := api.create("https://youtu.be/dQw4w9WgXcQ?t=42")
		j = api.waitFor(j.ID, 2*time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status, "%+v", j.Error)
		require.Equal(t, "Never Gonna Give You Up (fixture)", j.Media.Title, "title from yt-dlp's info.json")
		require.Equal(t, "Rick Astley", j.Media.Uploader, "uploader from yt-dlp's info.json")
		b, err := os.ReadFile(argv)
		require.NoError(t, err)
		args := strings.Split(strings.TrimSpace(string(b)), "\n")
		require.Equal(t, []string{"--", "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}, args[len(args)-2:],
			"yt-dlp gets -- and the canonical URL, last, as separate arguments")
		require.Contains(t, args, "--ignore-config")
		require.Contains(t, args, "--no-playlist")
	})

	// Bad media fails at the fetch stage while the gpu-node stays free.
	bad := map[string]string{
		"/notmedia.txt": "not_media",
		"/empty.ogg":    "empty_media",
		"/missing.ogg":  "source_not_found",
		"/huge.ogg":     "media_too_large",
	}
	badIDs := map[string]string{}
	for path := range bad {
		badIDs[path] = api.create(media + path).ID
	}

	ids := map[string]string{}
	for id := range refs {
		ids[id] = api.create(media + "/" + id + ".ogg").ID
	}

	t.Run("bad media fails with a clear code", func(t *testing.T) {
		for path, id := range badIDs {
			j := api.waitFor(id, 60*time.Second, terminal)
			require.Equal(t, "failed", j.Status, path)
			require.NotNil(t, j.Error, path)
			require.Equal(t, bad[path], j.Error.Code, "%s: %s", path, j.Error.Message)
		}
	})

	t.Run("LibriVox clips become captions", func(t *testing.T) {
		var corpus wer.Corpus
		for clip, id := range ids {
			j := api.waitFor(id, 4*time.Minute, terminal)
			require.Equal(t, "succeeded", j.Status, "%s: %+v", clip, j.Error)
			require.Equal(t, 1.0, j.Progress)
			require.NotNil(t, j.Media)
			require.Greater(t, j.Media.DurationSeconds, 2.0)

			code, srt := api.do("GET", "/v1/jobs/"+id+"/transcript?format=srt", nil)
			require.Equal(t, http.StatusOK, code, string(srt))
			srtText := checkCues(t, string(srt), false, j.Media.DurationSeconds)
			code, vtt := api.do("GET", "/v1/jobs/"+id+"/transcript?format=vtt", nil)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, srtText, checkCues(t, string(vtt), true, j.Media.DurationSeconds))

			code, js := api.do("GET", "/v1/jobs/"+id+"/transcript?format=json", nil)
			require.Equal(t, http.StatusOK, code)
			var doc struct {
				Segments []struct {
					Start, End float64
					Words      []struct{ Start, End float64 }
				}
			}
			require.NoError(t, json.Unmarshal(js, &doc))
			require.NotEmpty(t, doc.Segments)
			require.NotEmpty(t, doc.Segments[0].Words, "sphinx gives word timings")

			// Per-request cue shaping, and the TSV rows.
			code, narrow := api.do("GET", "/v1/jobs/"+id+"/transcript?format=srt&max_line_chars=20&max_lines=1", nil)
			require.Equal(t, http.StatusOK, code, string(narrow))
			require.Equal(t, srtText, checkCues(t, string(narrow), false, j.Media.DurationSeconds), "the same words, shaped otherwise")
			for _, cue := range strings.Split(strings.TrimSpace(string(narrow)), "\n\n") {
				lines := strings.Split(cue, "\n")[2:]
				require.Len(t, lines, 1, "max_lines=1: %q", cue)
				if strings.Contains(lines[0], " ") {
					require.LessOrEqual(t, len([]rune(lines[0])), 20, "max_line_chars=20: %q", cue)
				}
			}
			code, bad := api.do("GET", "/v1/jobs/"+id+"/transcript?format=vtt&max_lines=9", nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Equal(t, "invalid_argument", errorCode(t, bad))
			code, rows := api.do("GET", "/v1/jobs/"+id+"/transcript?format=tsv", nil)
			require.Equal(t, http.StatusOK, code)
			require.Regexp(t, `^start\tend\ttext\n(\d+\t\d+\t[^\t\n]+\n)+$`, string(rows))

			// ASS (karaoke), TTML and SBV show the same cues as SRT: as many,
			// and the words of each; karaoke only where it means something.
			cues := strings.Count(strings.TrimSpace(string(srt)), "\n\n") + 1
			code, sbv := api.do("GET", "/v1/jobs/"+id+"/transcript?format=sbv", nil)
			require.Equal(t, http.StatusOK, code, string(sbv))
			require.Regexp(t, `^(\d+:\d\d:\d\d\.\d{3},\d+:\d\d:\d\d\.\d{3}\n([^\n]+\n)+\n)+$`, string(sbv))
			require.Equal(t, cues, strings.Count(string(sbv), "\n\n"))
			code, ttml := api.do("GET", "/v1/jobs/"+id+"/transcript?format=ttml", nil)
			require.Equal(t, http.StatusOK, code, string(ttml))
			require.Contains(t, string(ttml), `ttp:profile="http://www.w3.org/ns/ttml/profile/imsc1/text"`)
			require.Equal(t, cues, strings.Count(string(ttml), "<p "))
			code, ass := api.do("GET", "/v1/jobs/"+id+"/transcript?format=ass&karaoke=true", nil)
			require.Equal(t, http.StatusOK, code, string(ass))
			require.Contains(t, string(ass), "[Events]\n")
			require.InDelta(t, cues, strings.Count(string(ass), "\nDialogue: "), 2, "cues shorter than a hundredth are left out")
			require.Greater(t, strings.Count(string(ass), `{\kf`), cues, "a karaoke tag a word")
			code, kvtt := api.do("GET", "/v1/jobs/"+id+"/transcript?format=vtt&karaoke=true", nil)
			require.Equal(t, http.StatusOK, code, string(kvtt))
			require.Regexp(t, `\S <\d\d:\d\d:\d\d\.\d{3}>\S`, string(kvtt), "word timestamps")
			code, bad = api.do("GET", "/v1/jobs/"+id+"/transcript?format=srt&karaoke=true", nil)
			require.Equal(t, http.StatusBadRequest, code)
			require.Equal(t, "invalid_argument", errorCode(t, bad))

			rate := corpus.Add(refs[clip], srtText)
			t.Logf("%s: WER %.3f  ref=%q hyp=%q", clip, rate, refs[clip], srtText)
		}
		t.Logf("corpus WER over %d clips: %.3f (%d errors / %d words)", len(ids), corpus.Rate(), corpus.Errs, corpus.Words)
		require.LessOrEqual(t, corpus.Rate(), 0.5)
	})

	t.Run("the same media and options reuse the transcript", func(t *testing.T) {
		clip := firstClip(refs)
		first := api.get(ids[clip])
		require.Equal(t, "speech", first.TranscribedFrom)
		code, want := api.do("GET", "/v1/jobs/"+first.ID+"/transcript?format=json", nil)
		require.Equal(t, http.StatusOK, code)

		again := api.waitFor(api.create(media+"/"+clip+".ogg").ID, time.Minute, terminal)
		require.Equal(t, "succeeded", again.Status)
		require.Equal(t, first.ID, again.ReusedFrom, "a cache hit")
		require.Empty(t, again.ReadyAt, "no GPU")
		require.Equal(t, first.Media.DurationSeconds, again.Media.DurationSeconds)
		code, got := api.do("GET", "/v1/jobs/"+again.ID+"/transcript?format=json", nil)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, strings.ReplaceAll(string(want), first.ID, again.ID), string(got), "the same transcript")

		// Other options are other work.
		code, b := api.do("POST", "/v1/jobs", map[string]string{"url": media + "/" + clip + ".ogg", "language": "en", "source": "asr"})
		require.Equal(t, http.StatusAccepted, code, string(b))
		var other jobJSON
		require.NoError(t, json.Unmarshal(b, &other))
		other = api.waitFor(other.ID, 2*time.Minute, terminal)
		require.Equal(t, "succeeded", other.Status)
		require.Empty(t, other.ReusedFrom)
		require.NotEmpty(t, other.ReadyAt)

		resp, err := http.Get(stack.CoreMetricsURL)
		require.NoError(t, err)
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Regexp(t, `(?m)^ytcaption_core_transcript_cache_hits_total [1-9]`, string(metrics))
	})

	t.Run("purge deletes the job, its transcript and its audio", func(t *testing.T) {
		// Audio no other job has (the same content would share its blob).
		dir := t.TempDir()
		ffmpeg(t, "-i", filepath.Join(librivox, firstClip(refs)+".wav"), "-af", "volume=0.8", "-c:a", "libvorbis", filepath.Join(dir, "own.ogg"))
		srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
		defer srv.Close()
		url := srv.URL + "/own.ogg"
		j := api.waitFor(api.create(url).ID, 2*time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status)
		conn, err := pgx.Connect(context.Background(), dbURL)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var key string
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT audio_key FROM jobs WHERE id = $1`, j.ID).Scan(&key))

		code, b := api.do("DELETE", "/v1/jobs/"+j.ID+"?purge=true", nil)
		require.Equal(t, http.StatusOK, code, string(b))
		require.JSONEq(t, `{"id":"`+j.ID+`","purged":true}`, string(b))
		code, _ = api.do("GET", "/v1/jobs/"+j.ID, nil)
		require.Equal(t, http.StatusNotFound, code, "gone, even from the edge's finished-job cache")
		code, _ = api.do("GET", "/v1/jobs/"+j.ID+"/transcript", nil)
		require.Equal(t, http.StatusNotFound, code)
		var deleted bool
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT deleted_at IS NOT NULL FROM blob_deletions WHERE key = $1`, key).Scan(&deleted))
		require.True(t, deleted, "its audio is deleted from the bucket at once")
		again := api.waitFor(api.create(url).ID, 2*time.Minute, terminal)
		require.Empty(t, again.ReusedFrom, "a purged job is nobody's transcript cache")
		code, b = api.do("DELETE", "/v1/jobs/"+j.ID+"?purge=maybe", nil)
		require.Equal(t, http.StatusBadRequest, code, string(b))
	})

	t.Run("another user's job is not found", func(t *testing.T) {
		other, _ := newUser(t, client{t: t, base: stack.EdgeURL, key: stack.APIKey}, "someone-else")
		var any string
		for _, id := range ids {
			any = id
		}
		code, b := client{t: t, base: stack.EdgeURL, key: other}.do("GET", "/v1/jobs/"+any, nil)
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, "not_found", errorCode(t, b))
		code, _ = client{t: t, base: stack.EdgeURL, key: other}.do("DELETE", "/v1/jobs/"+any, nil)
		require.Equal(t, http.StatusNotFound, code)
		code, b = client{t: t, base: stack.EdgeURL, key: other}.do("GET", "/v1/jobs", nil)
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"jobs":[]}`, string(b))
	})

	t.Run("cancelling a transcribing job stops the engine", func(t *testing.T) {
		id := api.create(media + "/long.ogg").ID
		api.waitFor(id, 2*time.Minute, func(j jobJSON) bool { return j.Status == "transcribing" || terminal(j) })
		// The engine must actually be running before we cancel it.
		require.Eventually(t, func() bool { return len(enginePIDs(stack.WorkDir)) > 0 }, 30*time.Second, 50*time.Millisecond)
		code, b := api.do("DELETE", "/v1/jobs/"+id, nil)
		require.Equal(t, http.StatusOK, code, string(b))
		var j jobJSON
		require.NoError(t, json.Unmarshal(b, &j))
		require.Equal(t, "cancelled", j.Status)
		require.Eventually(t, func() bool { return len(enginePIDs(stack.WorkDir)) == 0 }, 5*time.Second, 50*time.Millisecond,
			"pocketsphinx still running after the cancel")
		require.Equal(t, "cancelled", api.get(id).Status)
	})

	t.Run("cancelling a download stops yt-dlp and its children", func(t *testing.T) {
		id := api.create("https://youtu.be/" + hangingVideo).ID
		api.waitFor(id, time.Minute, func(j jobJSON) bool { return j.Status == "downloading" || terminal(j) })
		require.Eventually(t, func() bool { return len(pidsWith(hangingVideo)) > 0 }, 30*time.Second, 50*time.Millisecond)
		code, b := api.do("DELETE", "/v1/jobs/"+id, nil)
		require.Equal(t, http.StatusOK, code, string(b))
		require.Eventually(t, func() bool { return len(pidsWith(hangingVideo)) == 0 }, 10*time.Second, 50*time.Millisecond,
			"yt-dlp still running after the cancel")
		require.Equal(t, "cancelled", api.get(id).Status)
	})

	t.Run("services keep running", func(t *testing.T) {
		code, _ := api.do("GET", "/health/ready", nil)
		require.Equal(t, http.StatusOK, code)
		resp, err := http.Get(stack.CoreURL + "/health/ready")
		require.NoError(t, err)
		var ready struct {
			Status string
			YtDlp  string `json:"yt_dlp"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&ready))
		resp.Body.Close()
		require.Equal(t, "ok", ready.Status)
		require.Equal(t, "2099.01.01", ready.YtDlp, "core reports the yt-dlp it runs")
		for token, ok := range map[string]bool{stack.NodeToken: true, "not-a-node-token": false} {
			a, err := agent.New(agent.Config{CoreURL: stack.CoreURL, NodeToken: token, NodeID: "doctor"})
			require.NoError(t, err)
			_, err = a.Ping(context.Background())
			if ok {
				require.NoError(t, err, "a node's token passes Ping (ytcaption-gpu-node doctor)")
			} else {
				require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
			}
		}
		resp, err = http.Get(stack.CoreMetricsURL)
		require.NoError(t, err)
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, st := range []string{"queued", "downloading", "ready", "transcribing"} {
			require.Regexp(t, `(?m)^ytcaption_core_queue_depth\{state="`+st+`"\} \d+$`, string(metrics))
		}
		for _, stage := range []string{"download", "wait", "transcribe"} {
			require.Regexp(t, `(?m)^ytcaption_core_job_stage_seconds_count\{stage="`+stage+`"\} [1-9]`, string(metrics), "stage durations are observed")
		}
		code, b := api.do("GET", "/v1/jobs?limit=2", nil)
		require.Equal(t, http.StatusOK, code)
		var page struct {
			Jobs       []jobJSON `json:"jobs"`
			NextCursor string    `json:"next_cursor"`
		}
		require.NoError(t, json.Unmarshal(b, &page))
		require.Len(t, page.Jobs, 2)
		require.NotEmpty(t, page.NextCursor)
	})
}

// enginePIDs lists pocketsphinx processes working on files under dir.
func enginePIDs(dir string) []int {
	var pids []int
	for _, pid := range pidsWith(dir) {
		if cmd, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err == nil && bytes.Contains(cmd, []byte("pocketsphinx")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidsWith lists processes whose command line contains s.
func pidsWith(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmd, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

var (
	srtTime = `(\d{2}):(\d{2}):(\d{2}),(\d{3})`
	vttTime = `(\d{2}):(\d{2}):(\d{2})\.(\d{3})`
)

// checkCues parses SRT or WebVTT under strict rules — consecutive indices from
// 1 (SRT), HH:MM:SS,mmm / HH:MM:SS.mmm, start < end, cues in order without
// overlap, text in every cue, inside the media — and returns the text.
func checkCues(t *testing.T, doc string, vtt bool, duration float64) string {
	t.Helper()
	ts := srtTime
	if vtt {
		ts = vttTime
		require.True(t, strings.HasPrefix(doc, "WEBVTT\n"), "VTT header")
		doc = strings.TrimPrefix(doc, "WEBVTT\n")
	}
	timing := regexp.MustCompile(`^` + ts + ` --> ` + ts + `$`)
	blocks := regexp.MustCompile(`\n\n+`).Split(strings.TrimSpace(doc), -1)
	require.NotEmpty(t, blocks)
	var text []string
	prevEnd := -1.0
	for i, b := range blocks {
		lines := strings.Split(b, "\n")
		if !vtt {
			require.Equal(t, strconv.Itoa(i+1), lines[0], "SRT index")
			lines = lines[1:]
		}
		require.GreaterOrEqual(t, len(lines), 2, "cue %d: %q", i+1, b)
		m := timing.FindStringSubmatch(lines[0])
		require.NotNil(t, m, "cue %d timing %q", i+1, lines[0])
		sec := func(h, mi, s, ms string) float64 {
			a, _ := strconv.Atoi(h)
			b, _ := strconv.Atoi(mi)
			c, _ := strconv.Atoi(s)
			d, _ := strconv.Atoi(ms)
			require.Less(t, b, 60)
			require.Less(t, c, 60)
			return float64(a*3600+b*60+c) + float64(d)/1000
		}
		start, end := sec(m[1], m[2], m[3], m[4]), sec(m[5], m[6], m[7], m[8])
		require.Less(t, start, end, "cue %d", i+1)
		require.GreaterOrEqual(t, start, prevEnd, "cue %d overlaps its predecessor", i+1)
		require.LessOrEqual(t, end, duration+0.5, "cue %d ends after the media", i+1)
		prevEnd = end
		for _, l := range lines[1:] {
			require.NotEmpty(t, strings.TrimSpace(l), "cue %d has an empty line", i+1)
			text = append(text, l)
		}
	}
	return strings.Join(text, " ")
}
