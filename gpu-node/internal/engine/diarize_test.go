package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// diarizingServer is a stand-in for an OpenAI-compatible server that
// answers every transcription with fixture, recording each request's form.
func diarizingServer(t *testing.T, fixture string) (url string, forms chan map[string][]string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", fixture))
	require.NoError(t, err)
	forms = make(chan map[string][]string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/transcriptions" || r.ParseMultipartForm(32<<20) != nil {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		forms <- r.MultipartForm.Value
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, forms
}

func transcribeAll(t *testing.T, e Engine, req Request) []Segment {
	t.Helper()
	if req.AudioPath == "" {
		req.AudioPath = filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav")
	}
	var segs []Segment
	_, err := e.Transcribe(context.Background(), req, func(s Segment) error { segs = append(segs, s); return nil })
	require.NoError(t, err)
	return segs
}

// TestOpenAIDiarizedJSONWireFormat checks the request and response of
// OpenAI's gpt-4o-transcribe-diarize as documented (response_format
// diarized_json: segments of type transcript.text.segment with a speaker
// letter, no word timings; chunking_strategy needed past 30 s; no prompt).
// OpenAI's API cannot be reached here: the stand-in answers a documented
// response.
func TestOpenAIDiarizedJSONWireFormat(t *testing.T) {
	t.Parallel()
	url, forms := diarizingServer(t, "openai_diarized.json")
	e, err := NewOpenAI(OpenAIConfig{BaseURL: url, Models: []string{"gpt-4o-transcribe-diarize"}, Diarize: DiarizeOpenAI})
	require.NoError(t, err)
	caps := e.Capabilities()
	require.True(t, caps.Speakers)
	require.False(t, caps.Prompt, "OpenAI refuses a prompt for diarization models")
	require.False(t, caps.Translate)

	segs := transcribeAll(t, e, Request{Language: "en", Speakers: true, MaxSpeakers: 2, Prompt: "a prompt from an older job"})
	form := <-forms
	require.Equal(t, []string{"diarized_json"}, form["response_format"])
	require.Equal(t, []string{"auto"}, form["chunking_strategy"])
	require.Equal(t, []string{"gpt-4o-transcribe-diarize"}, form["model"])
	require.Equal(t, []string{"en"}, form["language"])
	require.Empty(t, form["timestamp_granularities[]"], "diarized_json has no word timings to ask for")
	require.Empty(t, form["prompt"])

	type said struct{ speaker, text string }
	var got []said
	for _, s := range segs {
		got = append(got, said{s.Speaker, s.Text})
		require.Empty(t, s.Words)
	}
	require.Equal(t, []said{
		{"Speaker 1", "Did you read it?"}, // "B" speaks first
		{"Speaker 2", "I did, last night."},
		{"Speaker 1", "And?"},
		{"Speaker 2", "It was long."},
	}, got, "in time order, labels numbered by first appearance, the empty segment dropped")
	checkSegments(t, segs)
	require.Equal(t, int64(320), segs[0].StartMS)
	require.Equal(t, int64(1900), segs[0].EndMS)

	// A job that did not ask for speakers on the same node: the model
	// answers diarized_json still (its only timed format); labels go.
	segs = transcribeAll(t, e, Request{Language: "auto"})
	form = <-forms
	require.Equal(t, []string{"diarized_json"}, form["response_format"])
	require.Empty(t, form["language"])
	require.Len(t, segs, 4)
	for _, s := range segs {
		require.Empty(t, s.Speaker)
	}
}

// TestOpenAIWhisperXDiarizationWireFormat checks the request and response of
// a whisperX-style OpenAI-compatible server (whisperx-api's documented form
// fields diarize, align, min_speakers and max_speakers; whisperX's JSON, with
// words inside segments and a speaker on each where one was assigned).
// whisperX cannot run here: the stand-in answers a documented response.
func TestOpenAIWhisperXDiarizationWireFormat(t *testing.T) {
	t.Parallel()
	url, forms := diarizingServer(t, "whisperx_diarized.json")
	e, err := NewOpenAI(OpenAIConfig{BaseURL: url, Models: []string{"large-v3"}, Diarize: DiarizeWhisperX})
	require.NoError(t, err)
	caps := e.Capabilities()
	require.True(t, caps.Speakers)
	require.True(t, caps.Prompt)
	require.True(t, caps.Translate)

	segs := transcribeAll(t, e, Request{Language: "en", Speakers: true, MinSpeakers: 2, MaxSpeakers: 3})
	form := <-forms
	require.Equal(t, []string{"verbose_json"}, form["response_format"])
	require.Equal(t, []string{"true"}, form["diarize"])
	require.Equal(t, []string{"true"}, form["align"], "word speakers need aligned words")
	require.Equal(t, []string{"2"}, form["min_speakers"])
	require.Equal(t, []string{"3"}, form["max_speakers"])

	require.Len(t, segs, 2)
	checkSegments(t, segs)
	require.Equal(t, "Speaker 1", segs[0].Speaker, "SPEAKER_01 speaks first")
	require.Equal(t, "Speaker 2", segs[1].Speaker)
	require.Equal(t, "Did you read it?", segs[0].Text)
	var words, speakers []string
	for _, w := range segs[1].Words {
		words, speakers = append(words, w.Text), append(speakers, w.Speaker)
	}
	require.Equal(t, []string{"I", "did,", "in", "nights."}, words, "a word whisperX could not align has no timing to keep")
	require.Equal(t, []string{"Speaker 2", "Speaker 2", "Speaker 1", "Speaker 2"}, speakers)
	require.Equal(t, "", segs[0].Words[3].Speaker, "a word with no speaker assigned stays unlabelled")
	require.InDelta(t, 0.91, segs[0].Words[0].Probability, 1e-6)

	// Without speakers asked for, the server is not asked to diarize.
	segs = transcribeAll(t, e, Request{Language: "en"})
	form = <-forms
	require.Empty(t, form["diarize"])
	require.Empty(t, form["min_speakers"])
	for _, s := range segs {
		require.Empty(t, s.Speaker)
	}
}

func TestOpenAIDiarizeSetting(t *testing.T) {
	t.Parallel()
	e, err := NewOpenAI(OpenAIConfig{BaseURL: "http://127.0.0.1:1", Model: "whisper-1"})
	require.NoError(t, err)
	require.False(t, e.Capabilities().Speakers, "a server not said to diarize labels nobody")
	_, err = NewOpenAI(OpenAIConfig{BaseURL: "http://127.0.0.1:1", Model: "whisper-1", Diarize: "pyannote"})
	require.ErrorContains(t, err, "--openai-diarize")
}

// FuzzParseDiarization feeds both diarization parsers arbitrary server
// answers: they never panic, and what they return is in time order, each
// segment ending no earlier than it starts, every speaker "Speaker N" with N
// counting up from 1 in order of first appearance.
func FuzzParseDiarization(f *testing.F) {
	for _, name := range []string{"openai_diarized.json", "whisperx_diarized.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"segments":[{"start":1e300,"end":-5,"text":"x","speaker":"A","words":[{"word":"y","start":null}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(segs []Segment) {
			next := 1
			seen := map[string]bool{}
			label := func(s string) {
				if s == "" || seen[s] {
					return
				}
				require.Equal(t, "Speaker "+strconv.Itoa(next), s, "speakers numbered by first appearance")
				seen[s] = true
				next++
			}
			for i, s := range segs {
				require.LessOrEqual(t, s.StartMS, s.EndMS)
				if i > 0 {
					require.LessOrEqual(t, segs[i-1].StartMS, s.StartMS)
				}
				label(s.Speaker)
				for _, w := range s.Words {
					label(w.Speaker)
				}
			}
		}
		if segs, err := ParseDiarizedJSON(b); err == nil {
			check(segs)
		}
		var w whisperXJSON
		if json.Unmarshal(b, &w) == nil {
			check(ParseWhisperX(w))
		}
	})
}
