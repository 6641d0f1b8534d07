package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	agent "github.com/ytcaption/ytcaption/gpu-node"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
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
	code, b = api.do("GET", "/v1/jobs/"+created.ID+"/events", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), `"text":"It was long.","speaker":"Speaker 2"`, "segment events carry the label")
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

	// Connect's RenameSpeakers, through the edge's Connect door.
	jobs := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, s.ConnectURL)
	_, err := jobs.RenameSpeakers(context.Background(), withKey(key.Secret, &ytcaptionv1.RenameSpeakersRequest{Id: created.ID, Names: map[string]string{"Speaker 1": "Mallory"}}))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "%v", err)
	_, err = jobs.RenameSpeakers(context.Background(), withKey(s.APIKey, &ytcaptionv1.RenameSpeakersRequest{Id: created.ID, Names: map[string]string{"Speaker 1": "a\x07b"}}))
	require.Equal(t, "invalid_argument", errcode.OfConnect(err))
	renamed, err := jobs.RenameSpeakers(context.Background(), withKey(s.APIKey, &ytcaptionv1.RenameSpeakersRequest{Id: created.ID, Names: map[string]string{"Speaker 2": "Marianne D."}}))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"Speaker 2": "Marianne D."}, renamed.Msg.GetJob().GetSpeakerNames(), "the names are replaced whole")
	require.Contains(t, transcript("vtt"), "<v Speaker 1>Did you read it?")
	require.Contains(t, transcript("vtt"), "<v Marianne D.>I did, last night.")

	// The CLI: --speakers on transcribe (the same media and options: the
	// transcript cache answers), speakers rename, and their usage errors.
	env := cliEnv(t, s)
	out := filepath.Join(t.TempDir(), "talk.vtt")
	r := runCLI(t, env, "transcribe", media+"/long.ogg", "--speakers", "--max-speakers", "2", "--format", "vtt", "-o", out)
	require.Equal(t, 0, r.code, r.stderr)
	vtt, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(vtt), "<v Speaker 1>Did you read it?", "a new job: the names stay the first job's")
	r = runCLI(t, env, "speakers", "rename", created.ID, "Speaker 1=Ann", "Speaker 2=Bo")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "Speaker 1: Ann\nSpeaker 2: Bo\n", r.stdout)
	r = runCLI(t, env, "jobs", "get", created.ID)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "speakers:  Speaker 1=Ann, Speaker 2=Bo\n")
	r = runCLI(t, env, "jobs", "transcript", created.ID, "--format", "srt")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "[Bo] I did, last night.")
	for _, args := range [][]string{
		{"speakers", "rename", created.ID, "Speaker 1"},
		{"speakers", "rename", created.ID},
		{"transcribe", media + "/long.ogg", "--speakers", "--min-speakers", "3", "--max-speakers", "2"},
		{"transcribe", media + "/long.ogg", "--max-speakers", "2"},
	} {
		r = runCLI(t, env, args...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
	}
	r = runCLI(t, env, "speakers", "rename", "00000000-0000-4000-8000-000000000000", "Speaker 1=Ann")
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "no job")
}

const diarizedScript = `
const fs = require("fs");
const OpenAI = require("openai");
const [baseURL, apiKey, file] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
(async () => {
  const out = await client.audio.transcriptions.create({
    file: fs.createReadStream(file), model: "gpt-4o-transcribe-diarize", response_format: "diarized_json", chunking_strategy: "auto",
  });
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestOpenAIClientDiarizedJSON runs the official openai npm client, unchanged,
// against /v1/audio/transcriptions with response_format diarized_json: on a
// stack whose engine labels speakers (a stand-in answering OpenAI's
// documented diarized_json) it gets OpenAI's shape with our speakers; on a
// stack whose engines label nobody, 400 unsupported_option.
func TestOpenAIClientDiarizedJSON(t *testing.T) {
	t.Parallel()
	dir := openAIClient(t)
	// The clip lasts about 3 s: the answer's segments lie within it, where
	// the silence guard has speech to keep them by.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"task": "transcribe", "duration": 3.1, "text": "Did you read it? I did, last night. And? It was long.",
  "segments": [
    {"type": "transcript.text.segment", "id": "seg_001", "start": 0.32, "end": 0.9, "text": "Did you read it?", "speaker": "A"},
    {"type": "transcript.text.segment", "id": "seg_002", "start": 0.95, "end": 1.6, "text": " I did, last night.", "speaker": "B"},
    {"type": "transcript.text.segment", "id": "seg_003", "start": 1.65, "end": 2.0, "text": "And?", "speaker": "A"},
    {"type": "transcript.text.segment", "id": "seg_004", "start": 2.05, "end": 2.6, "text": "It was long.", "speaker": "B"}]}`))
	}))
	t.Cleanup(srv.Close)
	s := startStackWith(t, "yt-dlp", func(c *Config) {
		c.Engine = "openai"
		c.OpenAI = agent.OpenAIConfig{BaseURL: srv.URL, Models: []string{"gpt-4o-transcribe-diarize"}, Diarize: "openai"}
	})
	const clip = "sense_and_sensibility_01_austen_64kb-0880"
	script := filepath.Join(t.TempDir(), "diarize.js")
	require.NoError(t, os.WriteFile(script, []byte(diarizedScript), 0o644))
	cmd := exec.Command("node", script, s.EdgeURL+"/v1", s.APIKey, filepath.Join(librivox, clip+".wav"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, stderr)
	var got struct {
		Task     string  `json:"task"`
		Duration float64 `json:"duration"`
		Text     string  `json:"text"`
		Segments []struct {
			Type, ID, Text, Speaker string
			Start, End              float64
		} `json:"segments"`
	}
	require.NoError(t, json.Unmarshal(out, &got), string(out))
	require.Equal(t, "transcribe", got.Task)
	require.Len(t, got.Segments, 4)
	for i, want := range []struct{ speaker, text string }{
		{"Speaker 1", "Did you read it?"}, {"Speaker 2", "I did, last night."}, {"Speaker 1", "And?"}, {"Speaker 2", "It was long."},
	} {
		sg := got.Segments[i]
		require.Equal(t, "transcript.text.segment", sg.Type)
		require.Equal(t, want.speaker, sg.Speaker)
		require.Equal(t, want.text, sg.Text)
		require.Less(t, sg.Start, sg.End)
	}
	require.InDelta(t, 0.32, got.Segments[0].Start, 1e-9)

	// Engines that label nobody: refused, not a job that waits forever.
	plain := startStack(t, "yt-dlp")
	api := client{t: t, base: plain.EdgeURL, key: plain.APIKey}
	media, _ := mediaServer(t)
	j := api.create(media + "/" + clip + ".ogg")
	api.waitFor(j.ID, time.Minute, terminal) // the node has said what it runs
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", clip+".wav")
	require.NoError(t, err)
	wav, err := os.ReadFile(filepath.Join(librivox, clip+".wav"))
	require.NoError(t, err)
	_, _ = fw.Write(wav)
	require.NoError(t, mw.WriteField("model", "whisper-1"))
	require.NoError(t, mw.WriteField("response_format", "diarized_json"))
	require.NoError(t, mw.Close())
	req, err := http.NewRequest("POST", plain.EdgeURL+"/v1/audio/transcriptions", &body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+plain.APIKey)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
	require.Equal(t, "unsupported_option", errorCode(t, b))
	require.Contains(t, string(b), "labels speakers")
}
