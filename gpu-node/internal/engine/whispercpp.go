package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/proc"
)

// WhisperCPPConfig configures the whisper.cpp CLI.
type WhisperCPPConfig struct {
	Binary  string // default "whisper-cli"
	Model   string // ggml model file (required)
	Threads int    // 0: whisper.cpp's default
	Grace   time.Duration
}

// WhisperCPP runs the whisper.cpp CLI and reads its full JSON output (-ojf).
type WhisperCPP struct{ cfg WhisperCPPConfig }

// NewWhisperCPP returns the adapter.
func NewWhisperCPP(cfg WhisperCPPConfig) (*WhisperCPP, error) {
	if cfg.Model == "" {
		return nil, errors.New("the whispercpp engine needs a model file")
	}
	if cfg.Binary == "" {
		cfg.Binary = "whisper-cli"
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	return &WhisperCPP{cfg: cfg}, nil
}

// Name implements Engine.
func (w *WhisperCPP) Name() string { return "whispercpp" }

// Args is the whisper.cpp command line for req, writing prefix.json.
func (w *WhisperCPP) Args(req Request, prefix string) []string {
	model := w.cfg.Model
	if req.Model != "" {
		model = req.Model
	}
	lang := strings.ToLower(req.Language)
	if lang == "" {
		lang = "auto"
	}
	args := []string{"-m", model, "-f", req.AudioPath, "-l", lang, "-oj", "-ojf", "-of", prefix, "-np"}
	if w.cfg.Threads > 0 {
		args = append(args, "-t", strconv.Itoa(w.cfg.Threads))
	}
	if req.translating() {
		args = append(args, "-tr")
	}
	if req.Prompt != "" {
		args = append(args, "--prompt", req.Prompt)
	}
	return args
}

// Transcribe implements Engine.
func (w *WhisperCPP) Transcribe(ctx context.Context, req Request, emit func(Segment) error) (Result, error) {
	dir, err := os.MkdirTemp(filepath.Dir(req.AudioPath), "whispercpp-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "out")
	cmd := proc.Command(ctx, w.cfg.Grace, w.cfg.Binary, w.Args(req, prefix)...)
	stderr := &tail{max: 4096}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("whisper.cpp: %w: %s", err, stderr.String())
	}
	b, err := os.ReadFile(prefix + ".json")
	if err != nil {
		return Result{}, fmt.Errorf("read whisper.cpp output: %w", err)
	}
	lang, segs, err := ParseWhisperCPP(b)
	if err != nil {
		return Result{}, err
	}
	for _, s := range segs {
		if err := emit(s); err != nil {
			return Result{}, err
		}
	}
	return Result{Language: lang}, nil
}

type whisperOffsets struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// ParseWhisperCPP reads whisper.cpp's -ojf JSON: transcription[] with offsets
// in milliseconds and tokens, which are joined into words at leading spaces.
func ParseWhisperCPP(b []byte) (string, []Segment, error) {
	var doc struct {
		Result struct {
			Language string `json:"language"`
		} `json:"result"`
		Transcription []struct {
			Offsets whisperOffsets `json:"offsets"`
			Text    string         `json:"text"`
			Tokens  []struct {
				Text    string         `json:"text"`
				Offsets whisperOffsets `json:"offsets"`
				P       float64        `json:"p"`
			} `json:"tokens"`
		} `json:"transcription"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", nil, fmt.Errorf("parse whisper.cpp output: %w", err)
	}
	var segs []Segment
	for _, t := range doc.Transcription {
		s := Segment{StartMS: t.Offsets.From, EndMS: t.Offsets.To, Text: strings.TrimSpace(t.Text)}
		for _, tok := range t.Tokens {
			if strings.HasPrefix(tok.Text, "[_") || strings.HasPrefix(tok.Text, "<|") || tok.Text == "" {
				continue // special tokens: [_BEG_], [_TT_150], <|endoftext|>
			}
			if strings.HasPrefix(tok.Text, " ") || len(s.Words) == 0 {
				s.Words = append(s.Words, Word{StartMS: tok.Offsets.From, EndMS: tok.Offsets.To,
					Text: strings.TrimSpace(tok.Text), Probability: float32(tok.P)})
				continue
			}
			// A sub-word piece continues the previous word.
			w := &s.Words[len(s.Words)-1]
			w.Text += tok.Text
			w.EndMS = tok.Offsets.To
			w.Probability = min(w.Probability, float32(tok.P))
		}
		if s.Text != "" {
			segs = append(segs, s)
		}
	}
	return doc.Result.Language, segs, nil
}
