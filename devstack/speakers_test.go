package devstack

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	agent "github.com/ytcaption/ytcaption/gpu-node"
)

// diarizedJSON is a response of OpenAI's gpt-4o-transcribe-diarize in its
// documented response_format=diarized_json: segments of type
// transcript.text.segment, each with a speaker letter, and no words.
const diarizedJSON = `{"task": "transcribe", "duration": 7.5, "text": "Did you read it? I did, last night. And? It was long.",
  "segments": [
    {"type": "transcript.text.segment", "id": "seg_001", "start": 0.32, "end": 1.9, "text": "Did you read it?", "speaker": "A"},
    {"type": "transcript.text.segment", "id": "seg_002", "start": 2.15, "end": 4.0, "text": " I did, last night.", "speaker": "B"},
    {"type": "transcript.text.segment", "id": "seg_003", "start": 4.4, "end": 5.1, "text": "And?", "speaker": "A"},
    {"type": "transcript.text.segment", "id": "seg_004", "start": 5.6, "end": 7.25, "text": "It was long.", "speaker": "B"}],
  "usage": {"type": "tokens", "input_tokens": 120, "output_tokens": 18, "total_tokens": 138}}`

// TestSpeakersThroughTheStack: a job asking for speakers runs on a gpu-node
// whose openai engine talks to a diarizing server — a stand-in answering in
// OpenAI's documented diarized_json, since OpenAI's API cannot be reached
// here — and comes back labelled in every format, not cut into chunks where a
// plain job is; its owner renames the speakers (bounded, nobody else may),
// and every format shows the names.
func TestSpeakersThroughTheStack(t *testing.T) {
	t.Parallel()
	var calls, diarized atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/transcriptions" || r.ParseMultipartForm(64<<20) != nil {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		calls.Add(1)
		if r.FormValue("response_format") == "diarized_json" && r.FormValue("chunking_strategy") == "auto" {
			diarized.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(diarizedJSON))
	}))
	t.Cleanup(srv.Close)
	media, _ := mediaServer(t)
	s := startStackWith(t, "yt-dlp", func(c *Config) {
		c.Engine = "openai"
		c.OpenAI = agent.OpenAIConfig{BaseURL: srv.URL, Models: []string{"gpt-4o-transcribe-diarize"}, Diarize: "openai"}
		c.ChunkLength = 20 * time.Second // long.ogg (about a minute) is chunked, unless it asks for speakers
	})
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	type speakerJob struct {
		jobJSON
		Speakers     bool              `json:"speakers"`
		MaxSpeakers  int               `json:"max_speakers"`
		SpeakerNames map[string]string `json:"speaker_names"`
	}
	decode := func(b []byte) speakerJob {
		var j speakerJob
		require.NoError(t, json.Unmarshal(b, &j), string(b))
		return j
	}

	code, b := api.do("POST", "/v1/jobs", map[string]any{"url": media + "/long.ogg", "speakers": true, "min_speakers": 3, "max_speakers": 2})
	require.Equal(t, http.StatusBadRequest, code, string(b))
	require.Equal(t, "invalid_argument", errorCode(t, b))

	code, b = api.do("POST", "/v1/jobs", map[string]any{"url": media + "/long.ogg", "speakers": true, "max_speakers": 2})
	require.Equal(t, http.StatusAccepted, code, string(b))
	created := decode(b)
	require.True(t, created.Speakers)
	require.Equal(t, 2, created.MaxSpeakers)
	require.Equal(t, "asr", created.Source, "captions have no speakers")
	plain := api.create(media + "/long.ogg")

	done := api.waitFor(created.ID, 2*time.Minute, terminal)
	require.Equal(t, "succeeded", done.Status, "%+v", done.Error)
	require.Zero(t, done.Chunks, "a speakers job is transcribed whole: chunks would number their speakers apart")
	other := api.waitFor(plain.ID, 2*time.Minute, terminal)
	require.Equal(t, "succeeded", other.Status, "%+v", other.Error)
	require.Greater(t, other.Chunks, 1, "the same audio without speakers is chunked")
	require.Equal(t, calls.Load(), diarized.Load(), "every request asked the diarizing model for diarized_json")

	transcript := func(format string) string {
		t.Helper()
		code, b := api.do("GET", "/v1/jobs/"+created.ID+"/transcript?format="+format, nil)
		require.Equal(t, http.StatusOK, code, string(b))
		return string(b)
	}
	require.Contains(t, transcript("vtt"), "<v Speaker 1>Did you read it?")
	require.Contains(t, transcript("vtt"), "<v Speaker 2>I did, last night.")
	require.Contains(t, transcript("srt"), "[Speaker 2] It was long.")
	require.Contains(t, transcript("txt"), "Speaker 1: Did you read it?\n\nSpeaker 2: I did, last night.\n\nSpeaker 1: And?")
	require.Contains(t, transcript("tsv"), "start\tend\tspeaker\ttext\n320\t1900\tSpeaker 1\tDid you read it?\n")
	require.Contains(t, transcript("json"), `"speaker": "Speaker 2"`)
	code, b = api.do("GET", "/v1/jobs/"+plain.ID+"/transcript?format=vtt", nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(b), "<v ", "a job that did not ask for speakers has none")

	// Renames: bounded, the owner's only.
	for _, bad := range []any{
		map[string]any{},
		map[string]any{"speakers": map[string]string{"Speaker 1": "Alice\n00:00:01.000 --> 00:00:02.000"}},
		map[string]any{"speakers": map[string]string{"Speaker 1": strings.Repeat("a", 65)}},
		map[string]any{"speakers": "Alice"},
		map[string]any{"speakers": map[string]string{"Speaker 1": "Alice"}, "url": "x"},
	} {
		code, b := api.do("PATCH", "/v1/jobs/"+created.ID, bad)
		require.Equal(t, http.StatusBadRequest, code, "%v: %s", bad, b)
		require.Equal(t, "invalid_argument", errorCode(t, b))
	}
	many := map[string]string{}
	for i := range 33 {
		many["Speaker "+strings.Repeat("9", i+1)] = "x"
	}
	code, b = api.do("PATCH", "/v1/jobs/"+created.ID, map[string]any{"speakers": many})
	require.Equal(t, http.StatusBadRequest, code, string(b))
	code, b = api.do("POST", "/v1/admin/users", map[string]string{"name": "mallory"})
	require.Equal(t, http.StatusOK, code, string(b))
	var user struct{ User struct{ ID string } }
	require.NoError(t, json.Unmarshal(b, &user))
	code, b = api.do("POST", "/v1/admin/users/"+user.User.ID+"/keys", map[string]string{"name": "k"})
	require.Equal(t, http.StatusOK, code, string(b))
	var key struct{ Secret string }
	require.NoError(t, json.Unmarshal(b, &key))
	mallory := client{t: t, base: s.EdgeURL, key: key.Secret}
	code, b = mallory.do("PATCH", "/v1/jobs/"+created.ID, map[string]any{"speakers": map[string]string{"Speaker 1": "Mallory"}})
	require.Equal(t, http.StatusNotFound, code, string(b))
	require.Equal(t, "not_found", errorCode(t, b))
	require.NotContains(t, transcript("vtt"), "Mallory")

	require.Equal(t, http.StatusOK, func() int { c, _ := api.do("GET", "/v1/jobs/"+created.ID, nil); return c }(), "the finished job is cached at the edge")
	code, b = api.do("PATCH", "/v1/jobs/"+created.ID, map[string]any{"speakers": map[string]string{"Speaker 1": "Elinor", "Speaker 2": "Marianne"}})
	require.Equal(t, http.StatusOK, code, string(b))
	require.Equal(t, map[string]string{"Speaker 1": "Elinor", "Speaker 2": "Marianne"}, decode(b).SpeakerNames)
	_, b = api.do("GET", "/v1/jobs/"+created.ID, nil)
	require.Equal(t, "Elinor", decode(b).SpeakerNames["Speaker 1"], "the edge's cached copy was dropped")
	require.Contains(t, transcript("vtt"), "<v Elinor>Did you read it?")
	require.Contains(t, transcript("srt"), "[Marianne] I did, last night.")
	require.Contains(t, transcript("txt"), "Elinor: And?")
	require.Contains(t, transcript("ass"), ",Default,Marianne,")
	require.NotContains(t, transcript("json"), "Speaker 1")
}
