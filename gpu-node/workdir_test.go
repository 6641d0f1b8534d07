package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNewMakesTheWorkDirectory: a node given a work directory that is not
// there makes it instead of failing every job it takes; one it cannot make
// stops it starting.
func TestNewMakesTheWorkDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	cfg := Config{CoreURL: "http://127.0.0.1:1", NodeToken: "t", NodeID: "n", WorkDir: dir,
		Engine: "openai", OpenAI: OpenAIConfig{BaseURL: "http://127.0.0.1:1", Models: []string{"whisper-1"}}}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("the work directory was not made: %v", err)
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
