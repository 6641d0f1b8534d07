package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeWhisperCLI writes a stand-in for whisper-cli into dir that records its
// arguments in the returned argv file and writes the recorded -ojf output.
func fakeWhisperCLI(t *testing.T, dir string) (bin, argv string) {
	t.Helper()
	fixture, err := filepath.Abs(filepath.Join("testdata", "whispercpp.json"))
	require.NoError(t, err)
	argv = filepath.Join(dir, "argv")
	bin = filepath.Join(dir, "whisper-cli")
	script := `#!/bin/sh
printf '%s\n' "$@" > "` + argv + `"
while [ $# -gt 0 ]; do [ "$1" = "-of" ] && prefix="$2"; shift; done
cp "` + fixture + `" "$prefix.json"
`
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, argv
}

// modelsDir makes a models directory holding files, with every symbolic
// link in its own path resolved.
func modelsDir(t *testing.T, files ...string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	for _, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("ggml"), 0o644))
	}
	return dir
}

// TestWhisperCPPModelIsANameNeverAPath: a job's model is looked up as a name
// in the models directory; a path, a climb out of it, a link that leads out
// of it, or a name it does not hold is refused as unsupported before
// whisper-cli runs. whisper.cpp is not installed here: a stand-in records the
// -m it was given (the documented command line).
func TestWhisperCPPModelIsANameNeverAPath(t *testing.T) {
	t.Parallel()
	models := modelsDir(t, "ggml-base.en.bin", "ggml-large-v3.bin", "custom.bin", "notes.txt", ".hidden.bin")
	outside := modelsDir(t, "ggml-secret.bin")
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(models, "ggml-passwd.bin")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "ggml-secret.bin"), filepath.Join(models, "ggml-secret.bin")))
	require.NoError(t, os.Symlink(outside, filepath.Join(models, "elsewhere")))
	require.NoError(t, os.Symlink("ggml-base.en.bin", filepath.Join(models, "alias.bin")))
	require.NoError(t, os.Mkdir(filepath.Join(models, "sub.bin"), 0o755))

	for _, tc := range []struct {
		model string
		want  string // the -m whisper-cli gets; "" refused
	}{
		{"", "ggml-base.en.bin"}, // the default
		{"base.en", "ggml-base.en.bin"},
		{"large-v3", "ggml-large-v3.bin"},
		{"ggml-large-v3.bin", "ggml-large-v3.bin"},
		{"custom", "custom.bin"},
		{"custom.bin", "custom.bin"},
		{"alias", "ggml-base.en.bin"}, // a link that stays inside
		{"/etc/passwd", ""},
		{"../x", ""},
		{"x/../../etc/passwd", ""},
		{"..", ""},
		{".", ""},
		{`..\x`, ""},
		{filepath.Join(models, "ggml-base.en.bin"), ""}, // absolute, even inside the directory
		{"passwd", ""},                                  // a link to /etc/passwd
		{"ggml-passwd.bin", ""},
		{"secret", ""},                    // a link to a model outside the directory
		{"elsewhere/ggml-secret.bin", ""}, // through a linked directory
		{"sub", ""},                       // a directory
		{".hidden", ""},
		{".hidden.bin", ""},
		{"notes.txt", ""},
		{"base.en\x00", ""},
		{"base.en\n", ""},
		{"-h", ""},
		{"tiny", ""}, // not installed
		{strings.Repeat("a", 300), ""},
	} {
		t.Run(tc.model, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			bin, argv := fakeWhisperCLI(t, dir)
			audio := filepath.Join(dir, "audio.wav")
			require.NoError(t, os.WriteFile(audio, []byte("RIFF"), 0o644))
			e, err := NewWhisperCPP(WhisperCPPConfig{Binary: bin, ModelsDir: models, Model: "base.en"})
			require.NoError(t, err)
			_, err = e.Transcribe(context.Background(), Request{AudioPath: audio, Model: tc.model}, func(Segment) error { return nil })
			if tc.want == "" {
				require.ErrorIs(t, err, ErrUnsupported)
				require.NoFileExists(t, argv, "whisper-cli never ran")
				return
			}
			require.NoError(t, err)
			b, err := os.ReadFile(argv)
			require.NoError(t, err)
			args := strings.Split(string(b), "\n")
			require.Equal(t, []string{"-m", filepath.Join(models, tc.want)}, args[:2])
		})
	}

	e, err := NewWhisperCPP(WhisperCPPConfig{ModelsDir: models, Model: "large-v3"})
	require.NoError(t, err)
	require.Equal(t, []string{"large-v3", "alias", "base.en", "custom"}, e.Models(),
		"the default first, then every model file inside the directory by name; no link out, no hidden file, no directory")
}

func TestWhisperCPPSettings(t *testing.T) {
	t.Parallel()
	models := modelsDir(t, "ggml-large-v3.bin")

	// The older form, a path to the model file: its directory serves.
	e, err := NewWhisperCPP(WhisperCPPConfig{Model: filepath.Join(models, "ggml-large-v3.bin")})
	require.NoError(t, err)
	p, err := e.ModelPath("")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(models, "ggml-large-v3.bin"), p)
	require.Equal(t, []string{"large-v3"}, e.Models())
	_, err = NewWhisperCPP(WhisperCPPConfig{ModelsDir: models, Model: filepath.Join(models, "ggml-large-v3.bin")})
	require.NoError(t, err, "the path names a file in the models directory")

	for _, cfg := range []WhisperCPPConfig{
		{},                  // no model
		{Model: "large-v3"}, // no directory
		{ModelsDir: models}, // no default model
		{ModelsDir: models, Model: "/etc/passwd"}, // a path outside the directory
		{ModelsDir: models, Model: ".."},
	} {
		_, err := NewWhisperCPP(cfg)
		require.Error(t, err, "%+v", cfg)
	}

	// A directory that went missing is the node's fault, not the job's.
	e, err = NewWhisperCPP(WhisperCPPConfig{ModelsDir: filepath.Join(models, "gone"), Model: "large-v3"})
	require.NoError(t, err)
	_, err = e.ModelPath("")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrUnsupported)
	require.Empty(t, e.Models())
}

// TestOpenAIForwardsOnlyAllowedModels: the upstream may be paid or shared, so
// a model the operator did not allow is refused without a request; the node
// offers exactly the allowed list, the first the default. The upstream is a
// stand-in speaking the documented verbose_json wire format.
func TestOpenAIForwardsOnlyAllowedModels(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("testdata", "openai_verbose.json"))
	require.NoError(t, err)
	var requests atomic.Int32
	var asked atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		asked.Store(r.FormValue("model"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	e, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Models: []string{" large-v3", "small", "", "large-v3"}, Model: "whisper-1"})
	require.NoError(t, err)
	require.Equal(t, []string{"large-v3", "small"}, e.Models(), "trimmed, deduplicated; --openai-model unused beside a list")
	audio := filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav")
	emit := func(Segment) error { return nil }

	for _, model := range []string{"gpt-4o-transcribe", "whisper-1", "/etc/passwd", "../x", "LARGE-V3", "large-v3 ", strings.Repeat("m", 10000)} {
		_, err := e.Transcribe(context.Background(), Request{AudioPath: audio, Model: model}, emit)
		require.ErrorIs(t, err, ErrUnsupported, model)
		require.Less(t, len(err.Error()), 300, "the refusal quotes a bounded part of the name")
	}
	require.Zero(t, requests.Load(), "no disallowed model reached the upstream")

	for model, want := range map[string]string{"": "large-v3", "small": "small", "large-v3": "large-v3"} {
		_, err := e.Transcribe(context.Background(), Request{AudioPath: audio, Model: model}, emit)
		require.NoError(t, err)
		require.Equal(t, want, asked.Load())
	}
	require.EqualValues(t, 3, requests.Load())

	legacy, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "whisper-1"})
	require.NoError(t, err)
	require.Equal(t, []string{"whisper-1"}, legacy.Models())
	_, err = NewOpenAI(OpenAIConfig{BaseURL: srv.URL})
	require.Error(t, err, "at least one model")
}
