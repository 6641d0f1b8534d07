package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/proc"
)

// WhisperCPPConfig configures the whisper.cpp CLI.
type WhisperCPPConfig struct {
	Binary string // default "whisper-cli"
	// ModelsDir holds the ggml model files jobs may name. A job's model is a
	// name, never a path: "base.en" is ModelsDir/ggml-base.en.bin.
	ModelsDir string
	// Model is the model of jobs that name none: a name in ModelsDir. A path
	// to a model file (the older form) serves that file's directory when
	// ModelsDir is empty.
	Model   string
	Threads int // 0: whisper.cpp's default
	Grace   time.Duration
}

// WhisperCPP runs the whisper.cpp CLI and reads its full JSON output (-ojf).
type WhisperCPP struct{ cfg WhisperCPPConfig }

// NewWhisperCPP returns the adapter. It checks the settings' shape only: the
// models are looked up for each job, so files added later are served.
func NewWhisperCPP(cfg WhisperCPPConfig) (*WhisperCPP, error) {
	if cfg.Model == "" {
		return nil, errors.New("the whispercpp engine needs a default model (--whispercpp-model)")
	}
	if strings.ContainsAny(cfg.Model, `/\`) {
		// The operator's own path: its directory is the models directory.
		dir := filepath.Dir(cfg.Model)
		if cfg.ModelsDir != "" && filepath.Clean(cfg.ModelsDir) != dir {
			return nil, fmt.Errorf("--whispercpp-model %q is not in --whispercpp-models-dir %q: name a model there", cfg.Model, cfg.ModelsDir)
		}
		cfg.ModelsDir, cfg.Model = dir, filepath.Base(cfg.Model)
	}
	if cfg.ModelsDir == "" {
		return nil, errors.New("the whispercpp engine needs a models directory (--whispercpp-models-dir)")
	}
	dir, err := filepath.Abs(cfg.ModelsDir)
	if err != nil {
		return nil, fmt.Errorf("whisper.cpp models directory: %w", err)
	}
	cfg.ModelsDir = dir
	if !plainName(cfg.Model) {
		return nil, fmt.Errorf("--whispercpp-model %q is not a model name", cfg.Model)
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

// modelName is what a job may call a model: a plain file name — no
// separator, no leading dot, nothing but letters, digits and ._+- — so that
// it can never climb out of the models directory.
var modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

func plainName(s string) bool { return modelName.MatchString(s) && !strings.Contains(s, "..") }

// maxModels bounds the list a node advertises.
const maxModels = 64

// ModelPath is the model file a job's model name stands for: ggml-NAME.bin,
// NAME.bin or NAME (a file name ending .bin) in the models directory, with
// every symbolic link resolved and the result still inside the directory.
// An empty name is the default model. A name that is not a plain name, or
// names no such file, is ErrUnsupported: no other attempt would find it.
func (w *WhisperCPP) ModelPath(name string) (string, error) {
	if name == "" {
		name = w.cfg.Model
	}
	if !plainName(name) {
		return "", fmt.Errorf("%w: %.64q is not a model name", ErrUnsupported, name)
	}
	dir, err := filepath.EvalSymlinks(w.cfg.ModelsDir)
	if err != nil {
		return "", fmt.Errorf("whisper.cpp models directory: %w", err)
	}
	files := []string{"ggml-" + name + ".bin", name + ".bin"}
	if strings.HasSuffix(name, ".bin") {
		files = append(files, name)
	}
	for _, f := range files {
		p, err := filepath.EvalSymlinks(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(dir, p); err != nil || !filepath.IsLocal(rel) {
			continue // a link out of the directory: not one of its models
		}
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: the whisper.cpp model %.64q is not installed on this node", ErrUnsupported, name)
}

// Models lists the names of the models a job may ask for — the default
// first — for core's fleet registry.
func (w *WhisperCPP) Models() []string {
	entries, err := os.ReadDir(w.cfg.ModelsDir)
	if err != nil {
		return nil
	}
	def := offeredAs(w.cfg.Model)
	var names []string
	seen := map[string]bool{}
	for _, e := range entries {
		name := offeredAs(e.Name())
		if !strings.HasSuffix(e.Name(), ".bin") || seen[name] || len(names) == maxModels {
			continue
		}
		if _, err := w.ModelPath(name); err != nil {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	slices.Sort(names)
	if i := slices.Index(names, def); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, def)
	}
	return names
}

// Capabilities implements Engine: Whisper models recognise any language,
// translate (-tr) and read a prompt (--prompt).
func (w *WhisperCPP) Capabilities() Capabilities {
	return Capabilities{Models: w.Models(), Translate: true, Prompt: true}
}

// offeredAs is the name a model file is offered as: ModelPath's lookup in
// reverse (ggml-base.en.bin and base.en.bin are "base.en").
func offeredAs(file string) string {
	return strings.TrimSuffix(strings.TrimPrefix(file, "ggml-"), ".bin")
}

// Args is the whisper.cpp command line for req, writing prefix.json. The
// model is the file ModelPath finds for req.Model.
func (w *WhisperCPP) Args(req Request, prefix string) ([]string, error) {
	model, err := w.ModelPath(req.Model)
	if err != nil {
		return nil, err
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
	return args, nil
}

// Transcribe implements Engine.
func (w *WhisperCPP) Transcribe(ctx context.Context, req Request, emit func(Segment) error) (Result, error) {
	dir, err := os.MkdirTemp(filepath.Dir(req.AudioPath), "whispercpp-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "out")
	args, err := w.Args(req, prefix)
	if err != nil {
		return Result{}, err
	}
	cmd := proc.Command(ctx, w.cfg.Grace, w.cfg.Binary, args...)
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
