package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// OpenAIConfig points at an OpenAI-compatible transcription server.
//
// BaseURL is the operator's setting, trusted like the node token: no job
// input reaches the address (the path is fixed and the model is checked
// against Models), so the outbound address policy that guards the URLs
// strangers choose has nothing to check here.
type OpenAIConfig struct {
	BaseURL string // e.g. http://127.0.0.1:8000 (speaches, vLLM, whisper.cpp server)
	APIKey  string // optional
	// Models are the only models a job may ask the server for, the first
	// the default: the server may be paid or shared, so any other name is
	// refused without a call.
	Models []string
	// Model is the older single-model setting: Models is [Model] when empty.
	Model      string
	HTTPClient *http.Client
	Timeout    time.Duration // per request; default 30 minutes
	// Diarize says the server labels speakers, and in which documented
	// shape (diarize.go): DiarizeOpenAI, DiarizeWhisperX, or "" (it does not).
	Diarize string
	// VADFilter sends vad_filter=true for jobs whose silence guard is on:
	// speaches and faster-whisper-server then run Silero VAD and leave
	// non-speech (silence, and music, which the node's own energy guard
	// cannot tell from speech) out before Whisper sees it. Off by default:
	// OpenAI's own API refuses arguments it does not know.
	VADFilter bool
	// Hotwords sends a job's vocabulary as the hotwords form field too
	// (speaches, faster-whisper-server: faster-whisper puts hotwords before
	// every 30 s window, where a prompt conditions only the first). Off by
	// default, for the same reason as VADFilter.
	Hotwords bool
}

// OpenAI calls POST {BaseURL}/v1/audio/transcriptions with verbose_json and
// segment and word timestamps. The server answers once, at the end, so all
// segments are emitted together.
type OpenAI struct{ cfg OpenAIConfig }

// NewOpenAI returns the adapter.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("the openai engine needs a base URL")
	}
	if err := checkDiarize(cfg.Diarize); err != nil {
		return nil, err
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	allowed := cfg.Models
	if len(allowed) == 0 {
		allowed = []string{cfg.Model}
	}
	cfg.Models = nil
	for _, m := range allowed {
		if m = strings.TrimSpace(m); m != "" && !slices.Contains(cfg.Models, m) {
			cfg.Models = append(cfg.Models, m)
		}
	}
	if len(cfg.Models) == 0 {
		return nil, errors.New("the openai engine needs at least one model (--openai-models)")
	}
	cfg.Model = cfg.Models[0]
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Minute
	}
	return &OpenAI{cfg: cfg}, nil
}

// Name implements Engine.
func (o *OpenAI) Name() string { return "openai" }

// Models lists the models a job may ask for, the default first, for core's
// fleet registry.
func (o *OpenAI) Models() []string { return slices.Clone(o.cfg.Models) }

// Capabilities implements Engine: an OpenAI-compatible server recognises any
// language, translates (/v1/audio/translations) and reads a prompt.
func (o *OpenAI) Capabilities() Capabilities {
	return o.diarizeCaps(Capabilities{Models: o.Models(), Translate: true, Prompt: true})
}

// model is the model to ask the server for on req's behalf.
func (o *OpenAI) model(req Request) (string, error) {
	if req.Model == "" {
		return o.cfg.Model, nil
	}
	if !slices.Contains(o.cfg.Models, req.Model) {
		return "", fmt.Errorf("%w: the model %.64q is not offered by this node (offered: %s)", ErrUnsupported, req.Model, strings.Join(o.cfg.Models, ", "))
	}
	return req.Model, nil
}

// verboseJSON is OpenAI's response_format=verbose_json.
type verboseJSON struct {
	Language string  `json:"language"`
	Duration float64 `json:"duration"`
	Text     string  `json:"text"`
	Segments []struct {
		ID               int     `json:"id"`
		Start            float64 `json:"start"`
		End              float64 `json:"end"`
		Text             string  `json:"text"`
		CompressionRatio float64 `json:"compression_ratio"`
		NoSpeechProb     float64 `json:"no_speech_prob"`
		AvgLogprob       float64 `json:"avg_logprob"`
	} `json:"segments"`
	Words []struct {
		Word        string   `json:"word"`
		Start       float64  `json:"start"`
		End         float64  `json:"end"`
		Probability *float64 `json:"probability"`
	} `json:"words"`
}

// maxCompressionRatio drops Whisper's repetition loops (see REFERENCE.md).
const maxCompressionRatio = 2.4

// Transcribe implements Engine.
func (o *OpenAI) Transcribe(ctx context.Context, req Request, emit func(Segment) error) (Result, error) {
	model, err := o.model(req)
	if err != nil {
		return Result{}, err
	}
	body, contentType, err := o.form(req, model)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	path := "/v1/audio/transcriptions"
	if req.translating() {
		path = "/v1/audio/translations" // always English; takes no language
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.cfg.BaseURL+path, body)
	if err != nil {
		return Result{}, err
	}
	hreq.Header.Set("Content-Type", contentType)
	if o.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.cfg.HTTPClient.Do(hreq)
	if err != nil {
		return Result{}, fmt.Errorf("transcription request: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Result{}, fmt.Errorf("read transcription: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		err := fmt.Errorf("transcription server answered %d: %.300s", resp.StatusCode, msg)
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity {
			err = fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return Result{}, err
	}
	segs, lang, err := o.parseResponse(req, b)
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

func (o *OpenAI) form(req Request, model string) (io.Reader, string, error) {
	f, err := os.Open(req.AudioPath)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, err := w.CreateFormFile("file", filepath.Base(req.AudioPath))
	if err != nil {
		return nil, "", err
	}
	if _, err := io.Copy(part, f); err != nil {
		return nil, "", err
	}
	fields := [][2]string{{"model", model}, {"response_format", "verbose_json"}}
	if !req.translating() {
		fields = append(fields, [2]string{"timestamp_granularities[]", "segment"}, [2]string{"timestamp_granularities[]", "word"})
		if l := strings.ToLower(req.Language); l != "" && l != "auto" {
			fields = append(fields, [2]string{"language", l})
		}
	}
	if req.Prompt != "" {
		fields = append(fields, [2]string{"prompt", req.Prompt})
	}
	if req.SkipSilence && o.cfg.VADFilter {
		fields = append(fields, [2]string{"vad_filter", "true"})
	}
	if len(req.Vocabulary) > 0 && o.cfg.Hotwords && !req.translating() { // the servers' translations take none
		fields = append(fields, [2]string{"hotwords", strings.Join(req.Vocabulary, ", ")})
	}
	fields = o.diarizeFields(req, fields)
	for _, kv := range fields {
		if err := w.WriteField(kv[0], kv[1]); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return &buf, w.FormDataContentType(), nil
}

func msOf(sec float64) int64 { return int64(sec*1000 + 0.5) }

// ParseVerboseJSON turns a verbose_json response into segments. Words come at
// the top level in OpenAI's shape; each is attached to the segment its middle
// falls in. Segments that look like repetition loops are dropped.
func ParseVerboseJSON(v verboseJSON) []Segment {
	var segs []Segment
	for _, s := range v.Segments {
		if s.CompressionRatio > maxCompressionRatio {
			continue
		}
		segs = append(segs, Segment{StartMS: msOf(s.Start), EndMS: msOf(s.End), Text: strings.TrimSpace(s.Text)})
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].StartMS < segs[j].StartMS })
	for _, w := range v.Words {
		mid := msOf((w.Start + w.End) / 2)
		i := sort.Search(len(segs), func(i int) bool { return segs[i].EndMS >= mid })
		if i == len(segs) || segs[i].StartMS > mid {
			continue // a word of a dropped segment
		}
		word := Word{StartMS: msOf(w.Start), EndMS: msOf(w.End), Text: strings.TrimSpace(w.Word)}
		if w.Probability != nil {
			word.Probability = float32(*w.Probability)
		}
		segs[i].Words = append(segs[i].Words, word)
	}
	return segs
}

// languageNames maps the names OpenAI's API reports to ISO 639-1 codes;
// servers such as speaches already answer with codes.
var languageNames = map[string]string{
	"english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it", "portuguese": "pt",
	"dutch": "nl", "russian": "ru", "chinese": "zh", "japanese": "ja", "korean": "ko", "arabic": "ar",
	"hindi": "hi", "turkish": "tr", "polish": "pl", "ukrainian": "uk", "swedish": "sv", "czech": "cs",
}

func languageCode(l string) string {
	l = strings.ToLower(strings.TrimSpace(l))
	if c, ok := languageNames[l]; ok {
		return c
	}
	return l
}
