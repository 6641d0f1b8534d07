package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tusServer is a contract stand-in for the edge's resumable uploads, as
// tus 1.0 (core protocol and creation) and docs/uploads.md describe them:
// POST /v1/uploads with Upload-Length answers 201 and a relative Location;
// HEAD answers Upload-Offset; PATCH at the right Upload-Offset appends and
// answers 204 with the new offset, a wrong one 409. Like tusd's filestore,
// it keeps the bytes that arrived of a PATCH whose connection broke. Then
// POST /v1/jobs {"upload_id"} makes job "j", which succeeds at once.
type tusServer struct {
	*httptest.Server
	mu       sync.Mutex
	length   int64
	data     []byte
	filename string
	creates  int
	offsets  []int64 // each PATCH's Upload-Offset
	jobBody  map[string]string
	jobKey   string
	// breakPatch, when set, is called for each PATCH (1-based) with the
	// bytes it carries; it returns how many to keep before the
	// connection is cut (-1: the PATCH goes through).
	breakPatch func(n int, w http.ResponseWriter, r *http.Request) int64
}

func newTusServer(t *testing.T) *tusServer {
	s := &tusServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/uploads", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		n, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64)
		if err != nil || r.Header.Get("Tus-Resumable") != "1.0.0" {
			http.Error(w, `{"error":{"code":"invalid_argument","message":"Upload-Length"}}`, http.StatusBadRequest)
			return
		}
		meta := strings.Fields(r.Header.Get("Upload-Metadata"))
		if len(meta) == 2 && meta[0] == "filename" {
			b, _ := base64.StdEncoding.DecodeString(meta[1])
			s.filename = string(b)
		}
		s.creates++
		s.length, s.data = n, nil
		w.Header().Set("Location", "/v1/uploads/up1")
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("HEAD /v1/uploads/up1", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Upload-Offset", strconv.Itoa(len(s.data)))
		w.Header().Set("Upload-Length", strconv.FormatInt(s.length, 10))
	})
	mux.HandleFunc("PATCH /v1/uploads/up1", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		s.offsets = append(s.offsets, off)
		n := len(s.offsets)
		if off != int64(len(s.data)) || r.Header.Get("Content-Type") != "application/offset+octet-stream" {
			s.mu.Unlock()
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":{"code":"conflict","message":"offset"}}`)
			return
		}
		brk := s.breakPatch
		s.mu.Unlock()
		keep := int64(-1)
		if brk != nil {
			keep = brk(n, w, r)
		}
		if keep >= 0 {
			b, _ := io.ReadAll(io.LimitReader(r.Body, keep))
			s.mu.Lock()
			s.data = append(s.data, b...)
			s.mu.Unlock()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // mid-body: the client's write breaks
			}
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.data = append(s.data, b...)
		w.Header().Set("Upload-Offset", strconv.Itoa(len(s.data)))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := json.NewDecoder(r.Body).Decode(&s.jobBody); err != nil || int64(len(s.data)) != s.length {
			http.Error(w, `{"error":{"code":"conflict","message":"the upload is not complete"}}`, http.StatusConflict)
			return
		}
		s.jobKey = r.Header.Get("Idempotency-Key")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":"j","status":"queued","url":"upload:%s"}`, s.filename)
	})
	mux.HandleFunc("GET /v1/jobs/j/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		s.mu.Lock()
		name := s.filename
		s.mu.Unlock()
		fmt.Fprintf(w, "id: 1:1\nevent: job\ndata: {\"id\":\"j\",\"status\":\"transcribing\",\"progress\":0.5,\"url\":\"upload:%s\"}\n\n", name)
		fmt.Fprintf(w, "id: 1:2\nevent: job\ndata: {\"id\":\"j\",\"status\":\"succeeded\",\"progress\":1,\"url\":\"upload:%s\"}\n\n", name)
	})
	mux.HandleFunc("GET /v1/jobs/j/transcript", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "1\n00:00:00,000 --> 00:00:01,000\nhello\n")
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *tusServer) received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.data)
}

// randomFile writes n random bytes to dir/name.
func randomFile(t *testing.T, dir, name string, n int) (string, []byte) {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path, b
}

// TestUploadResumesAfterADroppedConnection cuts the second PATCH's
// connection 10 KiB into its body: the client asks the server's offset
// (HEAD) and goes on from there — mid-chunk, not from the chunk's start —
// and every byte arrives once, in order, in one upload.
func TestUploadResumesAfterADroppedConnection(t *testing.T) {
	t.Parallel()
	srv := newTusServer(t)
	srv.breakPatch = func(n int, _ http.ResponseWriter, _ *http.Request) int64 {
		if n == 2 {
			return 10 << 10
		}
		return -1
	}
	file, want := randomFile(t, t.TempDir(), "talk.ogg", 300<<10)
	var sent []int64
	u := &uploader{cl: newClient(srv.URL, "k"), chunk: 64 << 10, now: time.Now,
		onSent: func(n, total int64) { sent = append(sent, n) }}
	id, _, err := u.upload(context.Background(), file)
	require.NoError(t, err)
	require.Equal(t, "up1", id)
	require.Equal(t, want, srv.received(), "every byte once, in order")
	require.Equal(t, 1, srv.creates)
	require.Equal(t, "talk.ogg", srv.filename)
	require.Equal(t, []int64{0, 64 << 10, 74 << 10, 138 << 10, 202 << 10, 266 << 10}, srv.offsets,
		"the PATCH after the break starts at the server's offset")
	require.Equal(t, int64(300<<10), sent[len(sent)-1])
}

// TestASecondRunResumesTheUpload: Ctrl-C in the middle of the first PATCH
// of a 10 MiB file stops the command (exit status 130, saying how to go
// on); the same command again finds the upload's URL in the cache
// directory, asks its offset and sends only the rest, then makes the job
// of it — keyed by the upload, so a retry makes no second job — and
// forgets the upload.
func TestASecondRunResumesTheUpload(t *testing.T) {
	t.Parallel()
	srv := newTusServer(t)
	interrupts := make(chan os.Signal, 1)
	srv.breakPatch = func(n int, w http.ResponseWriter, r *http.Request) int64 {
		if n != 1 {
			return -1
		}
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		srv.mu.Lock()
		srv.data = append(srv.data, b...) // what arrived is kept
		srv.mu.Unlock()
		interrupts <- os.Interrupt
		_, _ = io.Copy(io.Discard, r.Body) // until the client lets go
		<-r.Context().Done()
		return 0
	}
	dir := t.TempDir()
	file, want := randomFile(t, dir, "lecture.ogg", 10<<20)
	cache := filepath.Join(dir, "cache")
	getenv := func(k string) string {
		return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": dir, "XDG_CACHE_HOME": cache}[k]
	}

	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	e.getenv, e.interrupts = getenv, interrupts
	code := run(context.Background(), []string{"transcribe", file}, e)
	require.Equal(t, exitInterrupted, code, errOut.String())
	require.Contains(t, errOut.String(), "ytcaption: upload of lecture.ogg paused: run the same command again to resume it\n")
	require.Contains(t, errOut.String(), "uploading lecture.ogg: 0% (0.0 of 10.0 MiB)\n")
	state, err := os.ReadFile(filepath.Join(cache, "ytcaption", "uploads.json"))
	require.NoError(t, err)
	require.Contains(t, string(state), srv.URL+"/v1/uploads/up1")

	out.Reset()
	errOut.Reset()
	e = testEnv(&out, &errOut)
	e.getenv = getenv
	code = run(context.Background(), []string{"transcribe", file}, e)
	require.Equal(t, exitOK, code, errOut.String())
	require.Equal(t, want, srv.received())
	require.Equal(t, 1, srv.creates, "the second run resumed the first's upload")
	require.Equal(t, []int64{0, 1 << 20, 9 << 20}, srv.offsets)
	require.Equal(t, map[string]string{"upload_id": "up1"}, srv.jobBody)
	require.Equal(t, "cli-upload-up1", srv.jobKey)
	require.Contains(t, errOut.String(), "uploading lecture.ogg: 10% (1.0 of 10.0 MiB)\n")
	require.Contains(t, errOut.String(), "uploading lecture.ogg: 100% (10.0 of 10.0 MiB)\n")
	require.Contains(t, errOut.String(), "job j: succeeded\n", "then the job's progress")
	require.Equal(t, "1\n00:00:00,000 --> 00:00:01,000\nhello\n", out.String())
	state, err = os.ReadFile(filepath.Join(cache, "ytcaption", "uploads.json"))
	require.NoError(t, err)
	require.NotContains(t, string(state), "up1", "a job holds the upload: nothing to resume")
}

// TestAnExpiredUploadStartsOver: the remembered upload is gone (404 to
// HEAD, as after the server's 24 h expiry): a new one is made.
func TestAnExpiredUploadStartsOver(t *testing.T) {
	t.Parallel()
	srv := newTusServer(t)
	dir := t.TempDir()
	file, want := randomFile(t, dir, "a.ogg", 1000)
	u := &uploader{cl: newClient(srv.URL, "k"), chunk: 1 << 20, state: filepath.Join(dir, "uploads.json"), now: time.Now,
		onSent: func(int64, int64) {}}
	fi, err := os.Stat(file)
	require.NoError(t, err)
	u.remember(fileKey(srv.URL, file, fi), srv.URL+"/v1/uploads/gone")
	id, _, err := u.upload(context.Background(), file)
	require.NoError(t, err)
	require.Equal(t, "up1", id)
	require.Equal(t, 1, srv.creates)
	require.Equal(t, want, srv.received())
}

// TestTheUploadStaysOnTheServerGiven: the key goes wherever the upload's
// URL points, so only the upload's id is taken from Location — another
// host, or the edge naming itself http:// behind a proxy that ends TLS,
// still means the server the client was given.
func TestTheUploadStaysOnTheServerGiven(t *testing.T) {
	t.Parallel()
	u := &uploader{cl: newClient("https://edge.test", "k")}
	for loc, want := range map[string]string{
		"/v1/uploads/abc":                    "https://edge.test/v1/uploads/abc",
		"abc":                                "https://edge.test/v1/uploads/abc",
		"http://edge.test/v1/uploads/abc":    "https://edge.test/v1/uploads/abc",
		"http://evil.test/v1/uploads/abc":    "https://edge.test/v1/uploads/abc",
		"//evil.test/v1/uploads/abc?x=1#y":   "https://edge.test/v1/uploads/abc",
		"http://evil.test/steal/abc":         "",
		"":                                   "",
		"http://edge.test/v1/uploads/":       "",
		"/v1/uploads/..":                     "",
		"http://edge.test/v1/uploads/a%2F..": "",
	} {
		got, err := u.location(loc)
		if want == "" {
			require.Error(t, err, loc)
			continue
		}
		require.NoError(t, err, loc)
		require.Equal(t, want, got, loc)
	}
}

// TestALargeFileNeedsResumableUploads: a server without /v1/uploads (an
// older edge: its JSON 404) takes files of at most 25 MiB through the
// OpenAI-compatible route; a larger one is refused, saying so.
func TestALargeFileNeedsResumableUploads(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"no such route"}}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "big.ogg")
	f, err := os.Create(file)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(30<<20)) // sparse: nothing is read before the refusal
	require.NoError(t, f.Close())
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": dir}[k]
	}
	code := run(context.Background(), []string{"transcribe", file}, e)
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut.String(), "ytcaption: big.ogg is 30 MiB; this server has no resumable uploads and takes files of at most 25 MiB")
}

// TestASmallFileFallsBackToTheOpenAIRoute: an edge without /v1/uploads
// (its JSON 404) still takes a file of at most 25 MiB through POST
// /v1/audio/transcriptions; the client finds the job it made and follows
// it like any other.
func TestASmallFileFallsBackToTheOpenAIRoute(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []byte
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/uploads", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"no such route"}}`)
	})
	mux.HandleFunc("POST /v1/audio/transcriptions", func(w http.ResponseWriter, r *http.Request) {
		f, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(f)
		mu.Lock()
		got = b
		mu.Unlock()
		fmt.Fprint(w, `{"text":"hello"}`)
	})
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if got == nil {
			fmt.Fprint(w, `{"jobs":[]}`)
			return
		}
		fmt.Fprint(w, `{"jobs":[{"id":"j","status":"succeeded","url":"upload:small.ogg"}]}`)
	})
	mux.HandleFunc("GET /v1/jobs/j/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 1:1\nevent: job\ndata: {\"id\":\"j\",\"status\":\"succeeded\",\"progress\":1}\n\n")
	})
	mux.HandleFunc("GET /v1/jobs/j/transcript", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello\n") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	file, want := randomFile(t, dir, "small.ogg", 5000)
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": dir}[k]
	}
	code := run(context.Background(), []string{"transcribe", file}, e)
	require.Equal(t, exitOK, code, errOut.String())
	require.Equal(t, "hello\n", out.String())
	mu.Lock()
	require.Equal(t, want, got)
	mu.Unlock()

	out.Reset()
	errOut.Reset()
	code = run(context.Background(), []string{"transcribe", file, "--task", "translate"}, e)
	require.Equal(t, exitUsage, code, "the older route has no task: said, not dropped")
	require.Equal(t, "ytcaption: transcribe: this server has no resumable uploads, and its older upload route takes no --task, --webhook-url, --vocabulary, --guards or --speakers\n", errOut.String())
}

// TestAServerThatTakesNothingIsNotAskedForever: a PATCH answered 204 with
// the offset unchanged is an error, not a loop.
func TestAServerThatTakesNothingIsNotAskedForever(t *testing.T) {
	t.Parallel()
	var patches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			w.Header().Set("Location", "/v1/uploads/up1")
			w.WriteHeader(http.StatusCreated)
		case http.MethodPatch:
			patches.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Upload-Offset", "0")
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	file, _ := randomFile(t, t.TempDir(), "a.ogg", 100)
	u := &uploader{cl: newClient(srv.URL, "k"), chunk: 1 << 20, now: time.Now, onSent: func(int64, int64) {}}
	_, _, err := u.upload(context.Background(), file)
	require.ErrorContains(t, err, "the server took none of the bytes sent at offset 0")
	require.Equal(t, int32(1), patches.Load())
}

// TestOneFileIntoADirectory: -o DIR/ for one job names the file after it
// (an uploaded file's name without its extension), inside DIR; the job
// takes --task, --webhook-url and --language.
func TestOneFileIntoADirectory(t *testing.T) {
	t.Parallel()
	srv := newTusServer(t)
	dir := t.TempDir()
	file, _ := randomFile(t, dir, "lecture.ogg", 1000)
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": dir}[k]
	}
	code := run(context.Background(), []string{"transcribe", file, "-o", filepath.Join(dir, "captions") + "/", "--format", "vtt",
		"--task", "translate", "--webhook-url", "https://hooks.test/x", "--language", "de"}, e)
	require.Equal(t, exitOK, code, errOut.String())
	require.Equal(t, map[string]string{"upload_id": "up1", "task": "translate", "webhook_url": "https://hooks.test/x", "language": "de"}, srv.jobBody,
		"an uploaded file's job takes the job options")
	require.Contains(t, errOut.String(), "captions written to "+filepath.Join(dir, "captions", "lecture.vtt")+"\n")
	b, err := os.ReadFile(filepath.Join(dir, "captions", "lecture.vtt"))
	require.NoError(t, err)
	require.Contains(t, string(b), "hello")
	require.Empty(t, out.String())
}
