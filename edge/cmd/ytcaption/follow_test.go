package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// eventsServer speaks the edge's job event stream (text/event-stream, as
// GET /v1/jobs/{id}/events sends it) for job "j": the first connection
// reports the job transcribing and stays open; later ones resume after
// Last-Event-ID with the job's end. DELETE /v1/jobs/j cancels it.
type eventsServer struct {
	*httptest.Server
	mu       sync.Mutex
	resumeAt []string // each later connection's Last-Event-ID
	deletes  int
}

func newEventsServer(t *testing.T) *eventsServer {
	s := &eventsServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method == http.MethodDelete {
			s.deletes++
			fmt.Fprint(w, `{"id":"j","status":"cancelled"}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if last := r.Header.Get("Last-Event-ID"); last != "" {
			s.resumeAt = append(s.resumeAt, last)
			fmt.Fprint(w, "id: 1:2\nevent: job\ndata: {\"id\":\"j\",\"status\":\"succeeded\",\"progress\":1}\n\n")
			return
		}
		fmt.Fprint(w, "id: 1:1\nevent: job\ndata: {\"id\":\"j\",\"status\":\"transcribing\",\"progress\":0.2}\n\n")
		w.(http.Flusher).Flush()
		s.mu.Unlock()
		<-r.Context().Done() // until the client lets go
		s.mu.Lock()
	}))
	t.Cleanup(s.Close)
	return s
}

// watchedWriter is stderr, telling the test each time something is written.
type watchedWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes chan struct{}
}

func (w *watchedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.writes <- struct{}{}:
	default:
	}
	return w.buf.Write(b)
}

func (w *watchedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until stderr shows s.
func (w *watchedWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.writes:
		case <-deadline:
			t.Fatalf("stderr never showed %q: %q", s, w.String())
		}
	}
}

// TestCtrlCAsksAndNoFollowsOn presses Ctrl-C while a job transcribes:
// "n" (or Enter) keeps following it from where the stream stopped, "y"
// cancels it, and with nobody to ask it keeps running and the client quits.
func TestCtrlCAsksAndNoFollowsOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		tty         bool
		answer      string
		wantStatus  string // "": interrupted
		wantDeletes int
	}{
		{"no follows on", true, "n\n", "succeeded", 0},
		{"enter follows on", true, "\n", "succeeded", 0},
		{"yes cancels", true, "y\n", "", 1},
		{"no terminal leaves it running", false, "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newEventsServer(t)
			stderr := &watchedWriter{writes: make(chan struct{}, 1)}
			interrupts := make(chan os.Signal, 1)
			e := env{getenv: func(string) string { return "" }, stdin: strings.NewReader(tc.answer), stdout: &bytes.Buffer{}, stderr: stderr,
				stdinTTY: tc.tty, interrupts: interrupts}
			type result struct {
				j   *job
				err error
			}
			done := make(chan result, 1)
			go func() {
				j, err := followJob(context.Background(), newClient(srv.URL, "k"), &job{ID: "j", Status: "queued"}, false, false, e)
				done <- result{j, err}
			}()
			stderr.waitFor(t, "transcribing 20%")
			interrupts <- os.Interrupt
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("followJob never returned: %q", stderr.String())
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			require.Equal(t, tc.wantDeletes, srv.deletes)
			if tc.wantStatus == "" {
				var in *interrupted
				require.ErrorAs(t, r.err, &in)
				return
			}
			require.NoError(t, r.err)
			require.Equal(t, tc.wantStatus, r.j.Status)
			require.Contains(t, stderr.String(), "Cancel job j? [y/N]")
			require.Equal(t, []string{"1:1"}, srv.resumeAt, "following on resumes after the last event seen")
		})
	}
}

// TestAnUnreachableServerIsSaidInWords: not Go's dial error, but which
// server, why, and what to check.
func TestAnUnreachableServerIsSaidInWords(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": "http://" + addr, "YTCAPTION_API_KEY": "ytc_k", "HOME": t.TempDir()}[k]
	}
	code := run(context.Background(), []string{"jobs", "list"}, e)
	require.Equal(t, exitNetwork, code)
	require.Equal(t, "ytcaption: cannot reach ytcaption at http://"+addr+": connection refused — is it running? (make run) — or check the URL: YTCAPTION_URL, or ytcaption login --url\n", errOut.String())
}

// TestLoginToCoresPortSaysItIsNotAnEdge: core's listener is a net/http
// ServeMux, which answers the edge's routes with a plain-text 404.
func TestLoginToCoresPortSaysItIsNotAnEdge(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {})
	core := httptest.NewServer(mux)
	defer core.Close()
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	home := t.TempDir()
	e.getenv = func(k string) string { return map[string]string{"HOME": home}[k] }
	code := run(context.Background(), []string{"login", "--url", core.URL, "--api-key", "ytc_k"}, e)
	require.Equal(t, exitNetwork, code, errOut.String())
	require.Contains(t, errOut.String(), core.URL+" is not a ytcaption edge")
	_, err := os.Stat(home + "/.config/ytcaption/config.json")
	require.True(t, errors.Is(err, os.ErrNotExist), "nothing saved: %v", err)
}

// TestCancelOfAJobThatEndsMeanwhile: the job was running when read, but
// ended before the DELETE, which a server may refuse with 409 conflict
// (the REST error shape): the client reads the job again and says how it
// ended, exit status 1.
func TestCancelOfAJobThatEndsMeanwhile(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	status := "transcribing"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodDelete {
			status = "succeeded"
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":{"code":"conflict","message":"the job has finished"}}`)
			return
		}
		fmt.Fprintf(w, `{"id":"j","status":%q}`, status)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": t.TempDir()}[k]
	}
	code := run(context.Background(), []string{"jobs", "cancel", "j"}, e)
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: job j had already finished (succeeded): nothing to cancel\n", errOut.String())
}
