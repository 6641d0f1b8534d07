package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNewMakesTheWorkDirectory: a node given a work directory that is not
// there makes it instead of failing every job it takes; one it cannot make
// stops it starting. Its audio lives in a directory of its own there, and
// what a killed node left in it is gone when the node starts again; another
// node's files beside it are not touched.
func TestNewMakesTheWorkDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	cfg := Config{CoreURL: "http://127.0.0.1:1", NodeToken: "t", NodeID: "n/1", WorkDir: dir,
		Engine: "openai", OpenAI: OpenAIConfig{BaseURL: "http://127.0.0.1:1", Models: []string{"whisper-1"}}}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(dir, "ytcaption-gpu-node-n_1")
	if a.cfg.WorkDir != own {
		t.Fatalf("work directory %s, want %s", a.cfg.WorkDir, own)
	}
	if st, err := os.Stat(own); err != nil || !st.IsDir() {
		t.Fatalf("the work directory was not made: %v", err)
	}
	left := filepath.Join(own, "audio-job-3.wav")
	other := filepath.Join(dir, "ytcaption-gpu-node-n2", "audio-job-4.wav")
	for _, p := range []string{left, other} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("RIFF"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("a previous life's audio is left: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another node's audio was touched: %v", err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.WorkDir = filepath.Join(file, "below")
	if _, err := New(cfg); err == nil {
		t.Fatal("a work directory that cannot be made must stop the node")
	}
}
