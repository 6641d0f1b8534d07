package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Diarization by an OpenAI-compatible server: who speaks each segment (and
// word, where the server says). Two documented shapes are understood, set by
// OpenAIConfig.Diarize:
//
//   - DiarizeOpenAI: OpenAI's response_format=diarized_json (the model
//     gpt-4o-transcribe-diarize): {"task", "duration", "text", "segments":
//     [{"type": "transcript.text.segment", "id", "start", "end", "text",
//     "speaker": "A"}]}. It has no word timings and refuses a prompt (400
//     "Prompt is not supported for diarization models"); audio longer than
//     30 s needs chunking_strategy, which is always sent as "auto". Such a
//     model answers only json, text and diarized_json, so every request to
//     it asks for diarized_json; a job that did not ask for speakers drops
//     the labels.
//   - DiarizeWhisperX: whisperX-style servers (whisperx-api and the like):
//     verbose_json with diarize=true, align=true and min_speakers /
//     max_speakers form fields; segments carry "speaker" ("SPEAKER_00") and
//     their own "words", each with a "speaker" where whisperX could assign
//     one.
//
// Raw labels ("A", "SPEAKER_00") become "Speaker 1", "Speaker 2", … in the
// order the speakers first speak, so every engine labels alike.
const (
	DiarizeOpenAI   = "openai"
	DiarizeWhisperX = "whisperx"
)

// DiarizeModes lists what OpenAIConfig.Diarize may be ("" is off).
var DiarizeModes = []string{DiarizeOpenAI, DiarizeWhisperX}

func checkDiarize(mode string) error {
	if mode != "" && !slices.Contains(DiarizeModes, mode) {
		return fmt.Errorf("--openai-diarize must be %s or empty, got %q", strings.Join(DiarizeModes, " or "), mode)
	}
	return nil
}

// diarizeCaps is what diarization changes in the engine's capabilities:
// it labels speakers; OpenAI's diarizing model neither translates nor reads
// a prompt.
func (o *OpenAI) diarizeCaps(c Capabilities) Capabilities {
	switch o.cfg.Diarize {
	case DiarizeOpenAI:
		c.Speakers, c.Translate, c.Prompt = true, false, false
	case DiarizeWhisperX:
		c.Speakers = true
	}
	return c
}

// diarizeFields rewrites a request's form fields for diarization.
func (o *OpenAI) diarizeFields(req Request, fields [][2]string) [][2]string {
	switch {
	case o.cfg.Diarize == DiarizeOpenAI:
		out := fields[:0]
		for _, kv := range fields {
			switch kv[0] {
			case "timestamp_granularities[]", "prompt":
				continue // refused by diarizing models
			case "response_format":
				kv[1] = "diarized_json"
			}
			out = append(out, kv)
		}
		return append(out, [2]string{"chunking_strategy", "auto"})
	case o.cfg.Diarize == DiarizeWhisperX && req.Speakers:
		fields = append(fields, [2]string{"diarize", "true"}, [2]string{"align", "true"})
		if req.MinSpeakers > 0 {
			fields = append(fields, [2]string{"min_speakers", strconv.Itoa(req.MinSpeakers)})
		}
		if req.MaxSpeakers > 0 {
			fields = append(fields, [2]string{"max_speakers", strconv.Itoa(req.MaxSpeakers)})
		}
	}
	return fields
}

// parseResponse reads the server's answer to req: segments and the
// language it reports.
func (o *OpenAI) parseResponse(req Request, b []byte) ([]Segment, string, error) {
	if o.cfg.Diarize == DiarizeOpenAI {
		segs, err := ParseDiarizedJSON(b)
		if err != nil {
			return nil, "", fmt.Errorf("parse transcription: %w", err)
		}
		if !req.Speakers {
			for i := range segs {
				segs[i].Speaker = ""
			}
		}
		return segs, "", nil
	}
	var v verboseJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, "", fmt.Errorf("parse transcription: %w", err)
	}
	segs := ParseVerboseJSON(v)
	if o.cfg.Diarize == DiarizeWhisperX && req.Speakers {
		var w whisperXJSON
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, "", fmt.Errorf("parse transcription: %w", err)
		}
		segs = ParseWhisperX(w)
	}
	return segs, languageCode(v.Language), nil
}

// diarizedJSON is OpenAI's response_format=diarized_json.
type diarizedJSON struct {
	Task     string  `json:"task"`
	Duration float64 `json:"duration"`
	Text     string  `json:"text"`
	Segments []struct {
		Type    string  `json:"type"`
		ID      string  `json:"id"`
		Start   float64 `json:"start"`
		End     float64 `json:"end"`
		Text    string  `json:"text"`
		Speaker string  `json:"speaker"`
	} `json:"segments"`
}

// ParseDiarizedJSON turns a diarized_json response into segments, in time
// order, with speakers numbered by first appearance.
func ParseDiarizedJSON(b []byte) ([]Segment, error) {
	var d diarizedJSON
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	var segs []Segment
	for _, s := range d.Segments {
		if s.Type != "" && s.Type != "transcript.text.segment" {
			continue
		}
		t := strings.TrimSpace(s.Text)
		if t == "" {
			continue
		}
		segs = append(segs, Segment{StartMS: msOf(s.Start), EndMS: max(msOf(s.End), msOf(s.Start)), Text: t, Speaker: s.Speaker})
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].StartMS < segs[j].StartMS })
	numberSpeakers(segs)
	return segs, nil
}

// whisperXJSON is a whisperX-style server's verbose_json with diarization:
// words inside their segments, speakers on both.
type whisperXJSON struct {
	Language string `json:"language"`
	Segments []struct {
		Start   float64 `json:"start"`
		End     float64 `json:"end"`
		Text    string  `json:"text"`
		Speaker string  `json:"speaker"`
		Words   []struct {
			Word    string   `json:"word"`
			Start   *float64 `json:"start"` // whisperX leaves out times it could not align
			End     *float64 `json:"end"`
			Score   *float64 `json:"score"`
			Speaker string   `json:"speaker"`
		} `json:"words"`
	} `json:"segments"`
}

// ParseWhisperX turns a whisperX-style diarized response into segments with
// speakers, numbered by first appearance. A word whisperX could not time
// keeps its text in the segment but is not a timed word.
func ParseWhisperX(v whisperXJSON) []Segment {
	var segs []Segment
	for _, s := range v.Segments {
		seg := Segment{StartMS: msOf(s.Start), EndMS: max(msOf(s.End), msOf(s.Start)), Text: strings.TrimSpace(s.Text), Speaker: s.Speaker}
		if seg.Text == "" {
			continue
		}
		for _, w := range s.Words {
			if w.Start == nil || w.End == nil || strings.TrimSpace(w.Word) == "" {
				continue
			}
			word := Word{StartMS: msOf(*w.Start), EndMS: msOf(*w.End), Text: strings.TrimSpace(w.Word), Speaker: w.Speaker}
			if w.Score != nil {
				word.Probability = float32(*w.Score)
			}
			seg.Words = append(seg.Words, word)
		}
		segs = append(segs, seg)
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].StartMS < segs[j].StartMS })
	numberSpeakers(segs)
	return segs
}

// numberSpeakers renames raw labels "Speaker 1", "Speaker 2", … in the
// order they first appear, segment by segment, words within a segment after
// its own label.
func numberSpeakers(segs []Segment) {
	names := map[string]string{}
	name := func(raw string) string {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return ""
		}
		n, ok := names[raw]
		if !ok {
			n = "Speaker " + strconv.Itoa(len(names)+1)
			names[raw] = n
		}
		return n
	}
	for i := range segs {
		segs[i].Speaker = name(segs[i].Speaker)
		for k := range segs[i].Words {
			segs[i].Words[k].Speaker = name(segs[i].Words[k].Speaker)
		}
	}
}
