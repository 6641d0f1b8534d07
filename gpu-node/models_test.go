package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
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
	run(t, f, eng, reg)

	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotNil(t, f.failed)
	require.Equal(t, slices.Repeat([]string{"unsupported_option"}, len(names)), f.failCodes, "last: %s", f.failed.GetError().GetMessage())
	require.False(t, f.failed.GetRetryable())
	require.Contains(t, f.failed.GetError().GetMessage(), "base.en/../../../etc/passwd")
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

// TestNodeAdvertisesTheModelsItsEngineOffers: the openai engine's allowed
// list, as the operator set it; sphinx its built-in model.
func TestNodeAdvertisesTheModelsItsEngineOffers(t *testing.T) {
	t.Parallel()
	eng, err := engine.NewOpenAI(engine.OpenAIConfig{BaseURL: "http://127.0.0.1:1", Models: []string{"large-v3", "small"}})
	require.NoError(t, err)
	require.Equal(t, []string{"large-v3", "small"}, newAgent(Config{}, eng).models())
	require.Equal(t, []string{"en-us"}, newAgent(Config{}, engine.NewSphinx(engine.SphinxConfig{})).models())
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
