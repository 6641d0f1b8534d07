package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// batchServer is a contract stand-in for the edge's batch API as
// docs/batches.md and openapi.json describe it: POST /v1/batches answers
// 202 with batch "b1" running; its event stream (text/event-stream, event
// "batch") reports one job done, then the batch done; its jobs are three
// videos, one of them titled to climb out of any directory, one failed.
// Without events, GET /v1/batches/b1 answers the batch done at once.
type batchServer struct {
	*httptest.Server
	mu        sync.Mutex
	body      map[string]any
	key       string
	deletes   int
	noEvents  bool
	status    string // what GET and DELETE answer
	titles    []string
	transcrpt map[string]string // job id → the format asked for
}

const batchDone = `{"id":"b1","status":"done","url":"https://www.youtube.com/playlist?list=PL0123456789","skipped":1,` +
	`"counts":{"total":3,"succeeded":2,"failed":1}}`

func newBatchServer(t *testing.T) *batchServer {
	s := &batchServer{status: "running", transcrpt: map[string]string{},
		titles: []string{"../../etc/passwd", "Talk: one/two", ""}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/batches", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewDecoder(r.Body).Decode(&s.body)
		s.key = r.Header.Get("Idempotency-Key")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"id":"b1","status":"enumerating","counts":{}}`)
	})
	mux.HandleFunc("GET /v1/batches/b1/events", func(w http.ResponseWriter, r *http.Request) {
		if s.noEvents {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no such route"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: batch\ndata: {\"id\":\"b1\",\"status\":\"running\",\"counts\":{\"total\":3,\"queued\":2,\"succeeded\":1}}\n\n")
		fmt.Fprint(w, ": keep-alive\n\n")
		fmt.Fprint(w, "event: batch\ndata: "+batchDone+"\n\n")
	})
	mux.HandleFunc("GET /v1/batches/b1", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.noEvents {
			fmt.Fprint(w, batchDone)
			return
		}
		fmt.Fprintf(w, `{"id":"b1","status":%q,"url":"https://www.youtube.com/@someone","counts":{"total":3,"queued":1,"succeeded":2}}`, s.status)
	})
	mux.HandleFunc("DELETE /v1/batches/b1", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.deletes++
		s.status = "cancelled"
		fmt.Fprint(w, `{"id":"b1","status":"cancelled","counts":{"total":3,"succeeded":2,"cancelled":1}}`)
	})
	mux.HandleFunc("GET /v1/batches", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"batches":[%s,{"id":"b2","status":"running","counts":{"total":2,"running":2}}]}`, batchDone)
	})
	mux.HandleFunc("GET /v1/batches/b1/jobs", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		media := func(title string) string {
			return fmt.Sprintf(`{"title":%q}`, title)
		}
		fmt.Fprintf(w, `{"jobs":[
			{"id":"j1","status":"succeeded","url":"https://www.youtube.com/watch?v=aaaaaaaaaaa","media":%s},
			{"id":"j2","status":"succeeded","url":"https://www.youtube.com/watch?v=bbbbbbbbbbb","media":%s},
			{"id":"j3","status":"failed","url":"https://www.youtube.com/watch?v=ccccccccccc","media":%s,
			 "error":{"code":"media_unavailable","message":"the video is private"}}]}`,
			media(s.titles[0]), media(s.titles[1]), media(s.titles[2]))
	})
	mux.HandleFunc("GET /v1/jobs/{id}/transcript", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		q := r.URL.Query()
		s.transcrpt[r.PathValue("id")] = q.Get("format")
		if q.Has("karaoke") {
			s.transcrpt[r.PathValue("id")] += " karaoke=" + q.Get("karaoke")
		}
		if q.Has("revision") {
			s.transcrpt[r.PathValue("id")] += " revision=" + q.Get("revision")
		}
		fmt.Fprintf(w, "WEBVTT\n\ncaptions of %s\n", r.PathValue("id"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound) // as the edge answers what it does not have
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"not found"}}`)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *batchServer) env(t *testing.T, out, errOut *bytes.Buffer) env {
	e := testEnv(out, errOut)
	home := t.TempDir()
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": s.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": home}[k]
	}
	return e
}

// files lists dir's files, recursively, relative to it.
func files(t *testing.T, dir string) []string {
	var names []string
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return err
	}))
	sort.Strings(names)
	return names
}

// TestAPlaylistWritesOneFilePerVideoInsideDir: a playlist with -o DIR/
// makes a batch with the job options given, follows its bar to the end,
// writes each succeeded video's captions into DIR — the title
// "../../etc/passwd" too, as a name inside DIR — lists the failed job with
// its code, and exits 1 because one failed.
func TestAPlaylistWritesOneFilePerVideoInsideDir(t *testing.T) {
	t.Parallel()
	for _, noEvents := range []bool{false, true} {
		t.Run(fmt.Sprintf("events=%v", !noEvents), func(t *testing.T) {
			t.Parallel()
			srv := newBatchServer(t)
			srv.noEvents = noEvents
			top := t.TempDir()
			dir := filepath.Join(top, "a", "b", "out")
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"transcribe", "https://www.youtube.com/playlist?list=PL0123456789",
				"-o", dir + "/", "--format", "vtt", "--language", "en", "--max-items", "3", "--order", "newest"}, srv.env(t, &out, &errOut))
			require.Equal(t, exitFailed, code, errOut.String())
			require.Equal(t, map[string]any{"url": "https://www.youtube.com/playlist?list=PL0123456789", "language": "en",
				"max_items": float64(3), "order": "newest"}, srv.body)
			require.True(t, strings.HasPrefix(srv.key, "cli-"), srv.key)
			require.Equal(t, []string{"a/b/out/Talk_ one_two.vtt", "a/b/out/_.._etc_passwd.vtt"}, files(t, top),
				"one file per succeeded video, all inside DIR")
			b, err := os.ReadFile(filepath.Join(dir, "_.._etc_passwd.vtt"))
			require.NoError(t, err)
			require.Equal(t, "WEBVTT\n\ncaptions of j1\n", string(b))
			require.Equal(t, map[string]string{"j1": "vtt", "j2": "vtt"}, srv.transcrpt)
			require.Contains(t, errOut.String(), "j3  ccccccccccc  media_unavailable: the video is private\n")
			require.Contains(t, errOut.String(), "2 caption files written to "+dir+"/\n")
			require.Contains(t, errOut.String(), "1 entries skipped")
			require.Contains(t, errOut.String(), "batch b1: done, 3 of 3 done, 1 failed\n")
			require.Contains(t, errOut.String(), "ytcaption: batch b1: 1 of 3 jobs did not succeed\n")
			if !noEvents {
				require.Contains(t, errOut.String(), "batch b1: running, 1 of 3 done\n", "the bar follows the events")
			}
		})
	}
}

// TestAHostileTitleNeverLeavesDir: titles that are paths, dots, or a
// name a symlink planted in DIR holds (pointing outside) put no byte
// outside DIR.
func TestAHostileTitleNeverLeavesDir(t *testing.T) {
	t.Parallel()
	srv := newBatchServer(t)
	srv.titles = []string{"..", "/etc/cron.d/evil", "planted"}
	top := t.TempDir()
	dir := filepath.Join(top, "out")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	outside := filepath.Join(top, "victim")
	require.NoError(t, os.WriteFile(outside, []byte("untouched"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "_etc_cron.d_evil.srt")))
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"transcribe", "http://a.test/1", "http://a.test/2", "-o", dir}, srv.env(t, &out, &errOut))
	require.NotEqual(t, exitOK, code)
	b, err := os.ReadFile(outside)
	require.NoError(t, err)
	require.Equal(t, "untouched", string(b), "the symlink was not followed out of DIR")
	require.Equal(t, map[string]any{"urls": []any{"http://a.test/1", "http://a.test/2"}}, srv.body)
	for _, f := range files(t, top) {
		require.True(t, f == "victim" || strings.HasPrefix(f, "out/"), "%s is outside DIR", f)
	}
	require.FileExists(t, filepath.Join(dir, "j1.srt"), `".." is no name: the job's id is`)
}

// TestBatchesSubcommands: list, get and cancel, in words and as JSON.
func TestBatchesSubcommands(t *testing.T) {
	t.Parallel()
	srv := newBatchServer(t)
	do := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, srv.env(t, &out, &errOut))
		return code, out.String(), errOut.String()
	}
	code, out, errOut := do("batches", "list")
	require.Equal(t, exitOK, code, errOut)
	require.Regexp(t, `(?m)^b1\s+done\s+3/3\s+1\s+https://www.youtube.com/playlist\?list=PL0123456789$`, out)
	require.Regexp(t, `(?m)^b2\s+running\s+0/2\s+0\s+a list of 2 URLs$`, out)

	code, out, _ = do("batches", "list", "--json")
	require.Equal(t, exitOK, code)
	var page struct{ Batches []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &page))
	require.Len(t, page.Batches, 2)

	code, out, _ = do("batches", "get", "b1")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "status:     running\n")
	require.Contains(t, out, "jobs:       3 (queued 1, running 0, succeeded 2, failed 0, cancelled 0)\n")

	code, out, errOut = do("batches", "cancel", "b1", "--json")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "batch b1: cancelled (2 of 3 jobs had succeeded)\n", errOut)
	require.JSONEq(t, `{"id":"b1","status":"cancelled","counts":{"total":3,"succeeded":2,"cancelled":1}}`, out)

	code, _, errOut = do("batches", "cancel", "b1")
	require.Equal(t, exitOK, code)
	require.Equal(t, "batch b1 was already cancelled\n", errOut)
	require.Equal(t, 1, srv.deletes, "a cancelled batch is not cancelled again")

	code, _, errOut = do("batches", "get", "nope")
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: no batch nope: find your batches' ids with \"ytcaption batches list\"\n", errOut)
}

// TestCancellingAnEndedBatchSaysSo: exit status 1, as for a job.
func TestCancellingAnEndedBatchSaysSo(t *testing.T) {
	t.Parallel()
	srv := newBatchServer(t)
	srv.status = "done"
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"batches", "cancel", "b1"}, srv.env(t, &out, &errOut))
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: batch b1 had already ended (done): nothing to cancel\n", errOut.String())
	require.Zero(t, srv.deletes)
}

// TestAPlaylistTheClientMissedIsExplained: the server refuses a list at
// POST /v1/jobs, naming /v1/batches; the client says what to type.
func TestAPlaylistTheClientMissedIsExplained(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"invalid_url","message":"a playlist is a batch: submit it to POST /v1/batches, or one video's URL here"}}`)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": t.TempDir()}[k]
	}
	code := run(context.Background(), []string{"transcribe", "https://music.example/sets/7"}, e)
	require.Equal(t, exitUsage, code)
	require.Equal(t, "ytcaption: https://music.example/sets/7 is a playlist: give --batch -o DIR/ for one caption file per video "+
		"(a playlist is a batch: submit it to POST /v1/batches, or one video's URL here)\n", errOut.String())
}

// TestCtrlCCancelsTheBatchWhenAskedTo: Ctrl-C while a batch runs asks;
// "y" cancels it (DELETE) and the client exits interrupted.
func TestCtrlCCancelsTheBatchWhenAskedTo(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	deletes := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/batches", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"id":"b1","status":"running","counts":{"total":2,"queued":2}}`)
	})
	mux.HandleFunc("GET /v1/batches/b1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: batch\ndata: {\"id\":\"b1\",\"status\":\"running\",\"counts\":{\"total\":2,\"running\":1,\"queued\":1}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the client lets go
	})
	mux.HandleFunc("DELETE /v1/batches/b1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		deletes++
		fmt.Fprint(w, `{"id":"b1","status":"cancelled","counts":{"total":2,"cancelled":2}}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	stderr := &watchedWriter{writes: make(chan struct{}, 1)}
	interrupts := make(chan os.Signal, 1)
	dir := t.TempDir()
	e := env{getenv: func(k string) string {
		return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": dir}[k]
	}, stdin: strings.NewReader("y\n"), stdout: &bytes.Buffer{}, stderr: stderr, stdinTTY: true, interrupts: interrupts}
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"transcribe", "http://a.test/1", "http://a.test/2", "-o", filepath.Join(dir, "out")}, e)
	}()
	stderr.waitFor(t, "batch b1: running, 0 of 2 done")
	interrupts <- os.Interrupt
	var code int
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the client never returned: %q", stderr.String())
	}
	require.Equal(t, exitInterrupted, code, stderr.String())
	require.Contains(t, stderr.String(), "Cancel batch b1? [y/N]")
	require.Contains(t, stderr.String(), "batch b1: cancelled\n")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, deletes)
}
