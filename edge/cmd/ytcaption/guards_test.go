package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVocabularyAndGuardsFlags: --vocabulary and --guards become the job's
// vocabulary and guards in the body of POST /v1/jobs; left out, neither is
// sent (the server's defaults hold); a term or a guard the server would
// refuse is a usage error before any request.
func TestVocabularyAndGuardsFlags(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/jobs" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		bodies = append(bodies, m)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"j1","status":"queued","url":"http://a.test/a.ogg"}`))
	}))
	t.Cleanup(srv.Close)
	home := t.TempDir()
	e := func(out, errOut *bytes.Buffer) env {
		en := testEnv(out, errOut)
		en.getenv = func(k string) string {
			return map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": home}[k]
		}
		return en
	}
	transcribe := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"transcribe", "http://a.test/a.ogg", "--no-wait"}, args...), e(&out, &errOut))
		return code, errOut.String()
	}

	code, errs := transcribe("--vocabulary", " Kubernetes, Nomad Autoscaler,,", "--guards", "repetition")
	require.Equal(t, exitOK, code, errs)
	code, errs = transcribe("--guards", "none")
	require.Equal(t, exitOK, code, errs)
	code, errs = transcribe()
	require.Equal(t, exitOK, code, errs)
	mu.Lock()
	require.Len(t, bodies, 3)
	require.Equal(t, []any{"Kubernetes", "Nomad Autoscaler"}, bodies[0]["vocabulary"])
	require.Equal(t, map[string]any{"silence": false, "repetition": true}, bodies[0]["guards"])
	require.Equal(t, map[string]any{"silence": false, "repetition": false}, bodies[1]["guards"])
	require.NotContains(t, bodies[2], "guards")
	require.NotContains(t, bodies[2], "vocabulary")
	mu.Unlock()

	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	for _, args := range [][]string{
		{"--vocabulary", strings.Join(many, ",")},
		{"--vocabulary", strings.Repeat("k", 65)},
		{"--vocabulary", "Nomad\x07"},
		{"--guards", "music"},
		{"--guards", ""},
	} {
		code, errs := transcribe(args...)
		require.Equal(t, exitUsage, code, "%q: %s", args, errs)
		require.Contains(t, errs, args[0], "%q", args)
	}
	mu.Lock()
	require.Len(t, bodies, 3, "a usage error sends nothing")
	mu.Unlock()
}
