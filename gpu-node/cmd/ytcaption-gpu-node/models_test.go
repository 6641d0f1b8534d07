package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestModelFlags: the operator names the models a node offers — a models
// directory for whisper.cpp, an allowed list for the openai engine — and
// doctor shows them.
func TestModelFlags(t *testing.T) {
	t.Parallel()
	doc := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), nil, append([]string{"doctor", "--core-url", "http://127.0.0.1:1"}, args...), func(string) string { return "" }, &out, &out)
		return out.String(), err
	}
	var help bytes.Buffer
	_ = run(context.Background(), nil, []string{"--help"}, func(string) string { return "" }, &help, &help)
	for _, twin := range []string{"$YTCAPTION_GPU_NODE_OPENAI_MODELS", "$YTCAPTION_GPU_NODE_WHISPERCPP_MODELS_DIR", "$YTCAPTION_GPU_NODE_WHISPERCPP_MODEL"} {
		require.Contains(t, help.String(), twin)
	}

	openai := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"data":[]}`)) }))
	defer openai.Close()
	out, _ := doc("--engine", "openai", "--openai-base-url", openai.URL, "--openai-models", "large-v3, small")
	require.Contains(t, out, "ok   engine an OpenAI-compatible server at "+openai.URL+", models offered: large-v3, small")
	out, _ = doc("--engine", "openai", "--openai-base-url", openai.URL)
	require.Contains(t, out, "models offered: whisper-1", "--openai-model's default alone")

	dir := t.TempDir()
	bin := filepath.Join(dir, "whisper-cli")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	models := filepath.Join(dir, "models")
	require.NoError(t, os.Mkdir(models, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(models, "ggml-base.en.bin"), []byte("ggml"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(models, "ggml-large-v3.bin"), []byte("ggml"), 0o644))
	out, _ = doc("--engine", "whispercpp", "--whispercpp-binary", bin, "--whispercpp-models-dir", models, "--whispercpp-model", "large-v3")
	require.Contains(t, out, "ok   engine whisper.cpp at "+bin+", default model "+filepath.Join(models, "ggml-large-v3.bin")+", models offered: large-v3, base.en")
	out, _ = doc("--engine", "whispercpp", "--whispercpp-binary", bin, "--whispercpp-models-dir", models, "--whispercpp-model", "/etc/passwd")
	require.Regexp(t, `(?m)^FAIL engine whisper.cpp: .*not in --whispercpp-models-dir`, out)
	out, _ = doc("--engine", "whispercpp", "--whispercpp-binary", bin, "--whispercpp-models-dir", models, "--whispercpp-model", "tiny")
	require.Regexp(t, `(?m)^FAIL engine whisper.cpp default model: .*"tiny" is not installed`, out)

	for model, want := range map[string]string{"../x": "not in --whispercpp-models-dir", ".hidden": "not a model name"} {
		var stderr bytes.Buffer
		err := run(context.Background(), nil, []string{"--node-token", "t", "--engine", "whispercpp", "--whispercpp-models-dir", models, "--whispercpp-model", model, "--metrics-addr", ""},
			func(string) string { return "" }, &stderr, &stderr)
		require.ErrorContains(t, err, want)
	}
}
