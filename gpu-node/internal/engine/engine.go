// Package engine runs speech recognition for the gpu-node agent. Each adapter
// turns one engine's interface — a CLI's output stream, an HTTP server's JSON —
// into time-ordered segments with word timings, emitted as soon as they exist.
package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Request is one transcription.
type Request struct {
	AudioPath string // 16 kHz mono s16le WAV
	Language  string // "auto" or an ISO 639-1 code
	Model     string // a name the engine offers (its Models), never a path; empty: the default
	Duration  time.Duration
	Task      string // "transcribe" (or "") or "translate": English text of any speech
	Prompt    string // guides engines that take one
	// Speakers asks for who speaks each segment (and word), with bounds on
	// how many speakers there are (0: the engine decides).
	Speakers                 bool
	MinSpeakers, MaxSpeakers int
	// SkipSilence asks the engine to leave non-speech out where it can
	// (the job's silence guard): the openai engine's vad_filter.
	SkipSilence bool
	// Vocabulary are the job's terms, for engines that take them apart
	// from the prompt (the openai engine's hotwords); Prompt already ends
	// with them for engines that read one.
	Vocabulary []string
}

// translating says whether req asks for English text of any speech.
func (req Request) translating() bool { return req.Task == "translate" }

// Word is a recognised word; times are milliseconds from the start of the audio.
type Word struct {
	StartMS, EndMS int64
	Text           string
	Probability    float32
	Speaker        string // who speaks it, where the engine labels words
}

// Segment is a stretch of transcript.
type Segment struct {
	StartMS, EndMS int64
	Text           string
	Words          []Word
	Speaker        string // "Speaker 1", … on a Request with Speakers; "" when unknown
}

// Result is what a finished transcription reports besides its segments.
type Result struct {
	Language string // detected, or "" when the engine does not say
}

// Capabilities is what an engine says it can do. The agent advertises it to
// core with every poll for work; core keeps no table of engines, so this is
// the only place that knows what each one does: core refuses at creation a
// job no node could serve, and hands a node only jobs its engine serves.
type Capabilities struct {
	Models    []string // the names a job may ask for (Request.Model), the default first
	Languages []string // the languages it recognises, as a job names them; empty: any
	Translate bool     // Request.Task "translate": English text of any speech it recognises
	Prompt    bool     // it reads Request.Prompt
	Speakers  bool     // it labels who speaks (Request.Speakers)
}

// Engine transcribes audio files.
type Engine interface {
	Name() string
	// Capabilities says what it can do, for core's routing. A model list may
	// change while the node runs (files added to a models directory).
	Capabilities() Capabilities
	// Transcribe calls emit for each segment, in time order, as soon as it is
	// decoded; an error from emit stops the run and is returned. Cancelling ctx
	// stops the engine.
	Transcribe(ctx context.Context, req Request, emit func(Segment) error) (Result, error)
}

// ErrUnsupported marks a request the engine can never serve, such as a
// language it does not know: another attempt would fail the same way.
var ErrUnsupported = errors.New("unsupported request")

// Config selects and configures an engine.
type Config struct {
	Name       string // "sphinx" (default), "openai" or "whispercpp"
	Sphinx     SphinxConfig
	OpenAI     OpenAIConfig
	WhisperCPP WhisperCPPConfig
}

// Names lists the engines New knows.
var Names = []string{"sphinx", "openai", "whispercpp"}

// New builds the configured engine.
func New(cfg Config) (Engine, error) {
	switch cfg.Name {
	case "", "sphinx":
		return NewSphinx(cfg.Sphinx), nil
	case "openai":
		return NewOpenAI(cfg.OpenAI)
	case "whispercpp":
		return NewWhisperCPP(cfg.WhisperCPP)
	}
	return nil, fmt.Errorf("unknown engine %q (known: %s)", cfg.Name, strings.Join(Names, ", "))
}

// tail keeps the last max bytes of a tool's stderr, to explain a failure.
type tail struct {
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.buf)) }
