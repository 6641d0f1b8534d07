package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/waittest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// TestModelPathsFailUnsupportedAndNeverRun: jobs naming a model by a path,
// or a model the node does not have, fail as unsupported_option (not
// retryable) before whisper-cli runs, and do not open the engine's breaker:
// a stranger's bad names must not take the node out of the fleet. The node
// advertises the models it has. whisper.cpp is not installed here: a
// stand-in records whether it ran (the documented command line).
func TestModelPathsFailUnsupportedAndNeverRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	bin := filepath.Join(dir, "whisper-cli")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\ntouch '"+ran+"'\nexit 1\n"), 0o755))
	models := filepath.Join(dir, "models")
	require.NoError(t, os.Mkdir(models, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(models, "ggml-base.en.bin"), []byte("ggml"), 0o644))
	eng, err := engine.NewWhisperCPP(engine.WhisperCPPConfig{Binary: bin, ModelsDir: models, Model: "base.en"})
	require.NoError(t, err)

	names := []string{"/etc/passwd", "../x", "x/../../etc/passwd", "tiny", "..", "ggml-base.en.bin/..", "base.en/../../../etc/passwd"}
	first := assignment("sense_and_sensibility_01_austen_64kb-0880.wav")
	first.Model = names[0]
	f := newFakeCore(first) // run serves first's audio
	audio := httptest.NewServer(http.FileServer(http.Dir(librivox)))
	defer audio.Close()
	for i, name := range names[1:] {
		a := assignment(audio.URL + "/" + first.AudioUrl)
		a.JobId, a.Model = fmt.Sprintf("job-%d", i+2), name
		f.more = append(f.more, a)
	}
	reg := prometheus.NewRegistry()
	run(t, f, eng, withMetrics(reg))

	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotNil(t, f.failed)
	require.Equal(t, slices.Repeat([]string{"unsupported_option"}, len(names)), f.failCodes, "last: %s", f.failed.GetError().GetMessage())
	for id, req := range f.failedJobs {
		require.False(t, req.GetRetryable(), id)
	}
	// A job's failure arrives when its report is sent, beside the next
	// job's: the last name's is found by its job, not by arriving last.
	last := f.failedJobs[fmt.Sprintf("job-%d", len(names))]
	require.NotNil(t, last, "the last job failed")
	require.Contains(t, last.GetError().GetMessage(), "base.en/../../../etc/passwd")
	require.NoFileExists(t, ran, "whisper-cli never ran")
	require.Equal(t, []string{"base.en"}, f.models, "the node advertises the models it has")
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() == "ytcaption_circuit_breaker_state" {
			require.Zero(t, mf.GetMetric()[0].GetGauge().GetValue(), "%d refusals leave the breaker closed", len(names))
		}
	}
}

// TestNodeAdvertisesWhatItsEngineCanDo: each engine's poll for work carries
// its capabilities — core's only source of what an engine can do, which it
// routes jobs by — plus its name and models in the fields a core of the
// previous version reads. The GPU engines cannot run here: this is a contract
// test of the AcquireJobRequest wire format (proto3 JSON of
// proto/ytcaption/v1/worker.proto), engine by engine.
func TestNodeAdvertisesWhatItsEngineCanDo(t *testing.T) {
	t.Parallel()
	openai, err := engine.NewOpenAI(engine.OpenAIConfig{BaseURL: "http://127.0.0.1:1", Models: []string{"large-v3", "small"}})
	require.NoError(t, err)
	models := t.TempDir()
	for _, f := range []string{"ggml-base.en.bin", "ggml-large-v3.bin", "notes.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(models, f), []byte("ggml"), 0o644))
	}
	whispercpp, err := engine.NewWhisperCPP(engine.WhisperCPPConfig{ModelsDir: models, Model: "large-v3"})
	require.NoError(t, err)
	for _, tc := range []struct {
		eng  engine.Engine
		want string
	}{
		{engine.NewSphinx(engine.SphinxConfig{}), `{"engines":["sphinx"], "models":["en-us"],
			"capabilities":[{"name":"sphinx", "models":["en-us"], "languages":["en"]}]}`},
		{openai, `{"engines":["openai"], "models":["large-v3", "small"],
			"capabilities":[{"name":"openai", "models":["large-v3", "small"], "translate":true, "prompt":true}]}`},
		{whispercpp, `{"engines":["whispercpp"], "models":["large-v3", "base.en"],
			"capabilities":[{"name":"whispercpp", "models":["large-v3", "base.en"], "translate":true, "prompt":true}]}`},
	} {
		t.Run(tc.eng.Name(), func(t *testing.T) {
			t.Parallel()
			poll := firstPoll(t, tc.eng)
			// Only what this test is about; the rest (node id, version) is the agent's.
			got, err := protojson.Marshal(&ytcaptionv1.AcquireJobRequest{Engines: poll.GetEngines(), Models: poll.GetModels(), Capabilities: poll.GetCapabilities()})
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

// firstPoll runs an agent of eng against a core with no work and returns the
// agent's first AcquireJob.
func firstPoll(t *testing.T, eng engine.Engine) *ytcaptionv1.AcquireJobRequest {
	t.Helper()
	f := &fakeCore{done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewWorkerServiceHandler(f))
	core := httptest.NewServer(mux)
	defer core.Close()
	a := newAgent(Config{CoreURL: core.URL, NodeToken: "t", NodeID: "n", WorkDir: t.TempDir(), PollTimeout: time.Minute}, eng)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(ctx) }()
	waittest.Recv(t, f.done, time.Minute, "the agent did not poll") // it polled and was held
	cancel()
	waittest.Recv(t, stopped, time.Minute, "the agent did not stop")
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.polls)
	return f.polls[0]
}

func TestJobIDsStayInTheWorkDir(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"6f1c2d3e-0000-4000-8000-000000000001", "../../etc/cron.d/x", "/abs", `a\b`, "a\x00b", string(make([]byte, 500))} {
		p := filepath.Join("/work", "audio-"+fileSafe(id)+"-1.wav")
		require.Equal(t, "/work", filepath.Dir(p), "%q", id)
		require.LessOrEqual(t, len(p), 100)
	}
	require.Equal(t, "6f1c2d3e-0000-4000-8000-000000000001", fileSafe("6f1c2d3e-0000-4000-8000-000000000001"))
}
