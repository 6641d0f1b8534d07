package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func testEnv(stdout, stderr *bytes.Buffer) env {
	return env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: stdout, stderr: stderr}
}

func TestFlagsMayFollowArguments(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	c := newCommand("t", "t URL", "", []string{"URL"}, testEnv(&out, &errOut))
	o := c.fs.String("o", "", "")
	follow := c.fs.Bool("follow", false, "")
	pos, err := c.parse([]string{"http://a/b", "-o", "x.srt", "--follow"})
	require.NoError(t, err)
	require.Equal(t, []string{"http://a/b"}, pos)
	require.Equal(t, "x.srt", *o)
	require.True(t, *follow)

	c = newCommand("t", "t URL", "", []string{"URL"}, testEnv(&out, &errOut))
	pos, err = c.parse([]string{"--", "-not-a-flag"})
	require.NoError(t, err)
	require.Equal(t, []string{"-not-a-flag"}, pos)

	c = newCommand("t", "t URL", "", []string{"URL"}, testEnv(&out, &errOut))
	_, err = c.parse([]string{"a", "b"})
	require.Equal(t, exitUsage, must(exitCode(err)))
	require.EqualError(t, err, `t: unexpected argument "b" (run "ytcaption t --help")`)
}

func must(code int, _ string) int { return code }

// TestCompletionKnowsEveryFlag reads each command's flags from its --help
// and finds them in the bash and fish scripts.
func TestCompletionKnowsEveryFlag(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{{"transcribe"}, {"jobs", "list"}, {"jobs", "get"}, {"jobs", "transcript"}, {"batches", "list"}, {"batches", "get"}, {"batches", "cancel"}, {"translate"}, {"speakers", "rename"}, {"share", "create"}, {"share", "list"}, {"share", "revoke"}, {"login"}, {"version"}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(cmd, "--help"), testEnv(&out, &errOut))
		require.Equal(t, exitOK, code, errOut.String())
		flags := regexp.MustCompile(`(?m)^  --?(\S+)`).FindAllStringSubmatch(out.String(), -1)
		require.NotEmpty(t, flags, "%v --help lists no flags: %s", cmd, out.String())
		for _, f := range flags {
			dash := "--"
			if len(f[1]) == 1 {
				dash = "-"
			}
			require.Contains(t, bashCompletion, dash+f[1], "bash completion lacks %v %s", cmd, f[1])
			require.Regexp(t, `-[ls] `+regexp.QuoteMeta(f[1])+`\b`, fishCompletion, "fish completion lacks %v %s", cmd, f[1])
		}
	}
}

// TestEventsResumeWithoutGapsOrDuplicates breaks the stream after the first
// segment: the client reconnects with Last-Event-ID and sees every segment
// once.
func TestEventsResumeWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var lastIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			fmt.Fprint(w, "id: 1:0\nevent: job\ndata: {\"id\":\"j\",\"status\":\"transcribing\",\"progress\":0.1}\n\n")
			fmt.Fprint(w, ": keep-alive\n\n")
			fmt.Fprint(w, "id: 1:1\nevent: segment\ndata: {\"seq\":1,\"text\":\"one\"}\n\n")
			return // the connection breaks
		}
		fmt.Fprint(w, "id: 1:2\nevent: segment\ndata: {\"seq\":2,\"text\":\"two\"}\n\n")
		fmt.Fprint(w, "id: 1:3\nevent: job\ndata: {\"id\":\"j\",\"status\":\"succeeded\",\"progress\":1}\n\n")
	}))
	defer srv.Close()
	var segs []string
	var statuses []string
	lastID := ""
	final, err := newClient(srv.URL, "k").events(context.Background(), "j", &lastID,
		func(j *job) { statuses = append(statuses, j.Status) },
		func(s segment) { segs = append(segs, s.Text) })
	require.NoError(t, err)
	require.Equal(t, "succeeded", final.Status)
	require.Equal(t, []string{"one", "two"}, segs)
	require.Equal(t, []string{"transcribing", "succeeded"}, statuses)
	require.Equal(t, []string{"", "1:1"}, lastIDs, "the reconnect resumes after the last event seen")
	require.Equal(t, "1:3", lastID, "a later follow resumes after the last event")
}

func TestExitCodesOfServerAnswers(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]int{401: exitAuth, 403: exitAuth, 400: exitUsage, 422: exitUsage, 404: exitFailed, 409: exitFailed, 503: exitNetwork} {
		code, _ := exitCode(&apiError{Status: status})
		require.Equal(t, want, code, "HTTP %d", status)
	}
	code, name := exitCode(&apiError{Status: 403, Code: "quota_exceeded"})
	require.Equal(t, exitFailed, code, "a used-up quota is not a refused key")
	require.Equal(t, "quota_exceeded", name)
	code, name = exitCode(&jobFailed{&job{ID: "j", Status: "cancelled"}})
	require.Equal(t, exitFailed, code)
	require.Equal(t, "cancelled", name)
}

// TestA404AboutSomethingElseKeepsItsCode: only not_found means "no job";
// a revision the job lacks, or a transcript retention deleted, is said as
// the server says it — it once read "no job j1: find your jobs' ids".
func TestA404AboutSomethingElseKeepsItsCode(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		switch {
		case r.URL.Query().Has("revision"):
			fmt.Fprint(w, `{"error":{"code":"revision_not_found","message":"job j1 has no revision 9; its latest is 1"}}`)
		case r.URL.Path == "/v1/jobs/j1/transcript":
			fmt.Fprint(w, `{"error":{"code":"transcript_expired","message":"the transcript was deleted"}}`)
		default:
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no job"}}`)
		}
	}))
	defer srv.Close()
	home := t.TempDir()
	for args, want := range map[string]string{
		"jobs transcript j1 --revision 9": "ytcaption: revision_not_found: job j1 has no revision 9; its latest is 1\n",
		"jobs transcript j1":              "ytcaption: transcript_expired: the transcript was deleted\n",
		"jobs transcript j2":              "ytcaption: no job j2: find your jobs' ids with \"ytcaption jobs list\"\n",
	} {
		var out, errOut bytes.Buffer
		e := testEnv(&out, &errOut)
		e.getenv = func(k string) string {
			return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": home}[k]
		}
		require.Equal(t, exitFailed, run(context.Background(), strings.Fields(args), e), args)
		require.Equal(t, want, errOut.String(), args)
	}
}
