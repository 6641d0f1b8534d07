package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// Check says whether the engine cfg names can run here — a CLI's binary (and
// model) present, a server answering its model list — without transcribing
// anything. It returns what it found.
func Check(ctx context.Context, cfg Config) (string, error) {
	switch cfg.Name {
	case "", "sphinx":
		bin := cfg.Sphinx.Binary
		if bin == "" {
			bin = "pocketsphinx_continuous"
		}
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("pocketsphinx: %w (Debian: apt install pocketsphinx pocketsphinx-en-us)", err)
		}
		return "pocketsphinx at " + path, nil
	case "whispercpp":
		bin := cfg.WhisperCPP.Binary
		if bin == "" {
			bin = "whisper-cli"
		}
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("whisper.cpp: %w", err)
		}
		w, err := NewWhisperCPP(cfg.WhisperCPP)
		if err != nil {
			return "", fmt.Errorf("whisper.cpp: %w", err)
		}
		model, err := w.ModelPath("")
		if err != nil {
			return "", fmt.Errorf("whisper.cpp default model: %w", err)
		}
		return fmt.Sprintf("whisper.cpp at %s, default model %s, models offered: %s", path, model, strings.Join(w.Models(), ", ")), nil
	case "openai":
		if cfg.OpenAI.BaseURL == "" {
			return "", fmt.Errorf("openai: no server URL (--openai-base-url)")
		}
		o, err := NewOpenAI(cfg.OpenAI)
		if err != nil {
			return "", fmt.Errorf("openai: %w", err)
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		url := strings.TrimSuffix(cfg.OpenAI.BaseURL, "/") + "/v1/models"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		if cfg.OpenAI.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+cfg.OpenAI.APIKey)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("openai server: %w", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode/100 != 2 {
			return "", fmt.Errorf("openai server: GET %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
		}
		return fmt.Sprintf("an OpenAI-compatible server at %s, models offered: %s", cfg.OpenAI.BaseURL, strings.Join(o.Models(), ", ")), nil
	}
	return "", fmt.Errorf("unknown engine %q (known: %s)", cfg.Name, strings.Join(Names, ", "))
}
