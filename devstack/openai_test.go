package devstack

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/wer"
)

// openAIVersion pins the official OpenAI client the test installs from npm.
const openAIVersion = "4.95.0"

// openAIClient installs the official openai npm package once per machine
// (under ~/.cache/ytcaption) and returns the directory to run node in.
func openAIClient(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the OpenAI client test needs Node.js and npm", tool)
		}
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "ytcaption", "openai-node-"+openAIVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--silent", "openai@"+openAIVersion)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm install openai: %s", out)
	}
	return dir
}

const openAIScript = `
const fs = require("fs");
const OpenAI = require("openai");
const [baseURL, apiKey, file, long] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
(async () => {
  const out = {};
  // Three clips in one file: a segment each, streamed as they come.
  out.stream = [];
  const stream = await client.audio.transcriptions.create({
    file: fs.createReadStream(long), model: "gpt-4o-transcribe", language: "en", stream: true,
  });
  for await (const event of stream) out.stream.push(event);
  // Not audio: the job fails, and the client raises the API's error.
  try {
    const bad = await client.audio.transcriptions.create({
      file: fs.createReadStream(__filename), model: "gpt-4o-transcribe", stream: true,
    });
    for await (const event of bad) {}
    out.streamError = { message: "no error" };
  } catch (e) {
    out.streamError = { name: e.constructor.name, status: e.status ?? null, code: e.code ?? e.error?.code ?? null, message: e.message };
  }
  for (const response_format of ["json", "verbose_json", "srt"]) {
    out[response_format] = await client.audio.transcriptions.create({
      file: fs.createReadStream(file), model: "whisper-1", language: "en", response_format,
      timestamp_granularities: response_format === "verbose_json" ? ["word", "segment"] : undefined,
    });
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestOpenAIClientTranscribes runs the official openai npm client, unchanged,
// against /v1/audio/transcriptions: a LibriVox clip in json, verbose_json and
// srt, each from a real pocketsphinx run, and streamed (stream: true) as
// transcript.text.delta events and a transcript.text.done the client reads.
func TestOpenAIClientTranscribes(t *testing.T) {
	t.Parallel()
	dir := openAIClient(t)
	s := startStack(t, "yt-dlp")
	_, refs := mediaServer(t)
	const clip = "sense_and_sensibility_01_austen_64kb-0880"
	script := filepath.Join(t.TempDir(), "transcribe.js")
	require.NoError(t, os.WriteFile(script, []byte(openAIScript), 0o644))
	// Three clips, a second of silence between them, for the stream.
	clips := []string{"sense_and_sensibility_01_austen_64kb-0870", clip, "sense_and_sensibility_01_austen_64kb-0890"}
	long := filepath.Join(t.TempDir(), "three.wav")
	concat := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(librivox, clips[0]+".wav"), "-i", filepath.Join(librivox, clips[1]+".wav"),
		"-i", filepath.Join(librivox, clips[2]+".wav"), "-filter_complex",
		"[0:a]apad=pad_dur=1[a];[1:a]apad=pad_dur=1[b];[a][b][2:a]concat=n=3:v=0:a=1", long)
	cout, err := concat.CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", cout)
	cmd := exec.Command("node", script, s.EdgeURL+"/v1", s.APIKey, filepath.Join(librivox, clip+".wav"), long)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, stderr)

	var got struct {
		JSON struct {
			Text string `json:"text"`
		} `json:"json"`
		Verbose struct {
			Task     string  `json:"task"`
			Language string  `json:"language"`
			Duration float64 `json:"duration"`
			Text     string  `json:"text"`
			Segments []struct {
				Start, End float64
				Text       string
			} `json:"segments"`
			Words []struct {
				Word       string
				Start, End float64
			} `json:"words"`
		} `json:"verbose_json"`
		SRT    string `json:"srt"`
		Stream []struct {
			Type  string `json:"type"`
			Delta string `json:"delta"`
			Text  string `json:"text"`
		} `json:"stream"`
		StreamError struct {
			Name    string `json:"name"`
			Status  *int   `json:"status"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"streamError"`
	}
	require.NoError(t, json.Unmarshal(out, &got), string(out))

	rate := wer.Rate(refs[clip], got.JSON.Text)
	t.Logf("json text %q (WER %.3f)", got.JSON.Text, rate)
	require.LessOrEqual(t, rate, 0.5, "json: real speech, recognised")

	v := got.Verbose
	require.Equal(t, "transcribe", v.Task)
	require.Equal(t, "en", v.Language)
	require.InDelta(t, 3.0, v.Duration, 1.0, "the clip lasts about 3 s")
	require.Equal(t, strings.TrimSpace(got.JSON.Text), strings.TrimSpace(v.Text))
	require.NotEmpty(t, v.Segments)
	for _, sg := range v.Segments {
		require.Less(t, sg.Start, sg.End)
		require.LessOrEqual(t, sg.End, v.Duration+0.5)
	}
	require.NotEmpty(t, v.Words, "timestamp_granularities word")

	require.NotEmpty(t, got.Stream)
	done := got.Stream[len(got.Stream)-1]
	require.Equal(t, "transcript.text.done", done.Type, "the stream ends with its done event")
	var joined strings.Builder
	for _, ev := range got.Stream[:len(got.Stream)-1] {
		require.Equal(t, "transcript.text.delta", ev.Type)
		require.NotEmpty(t, ev.Delta)
		joined.WriteString(ev.Delta)
	}
	longRef := refs[clips[0]] + " " + refs[clips[1]] + " " + refs[clips[2]]
	rate = wer.Rate(longRef, done.Text)
	t.Logf("stream: %d deltas, done text %q (WER %.3f)", len(got.Stream)-1, done.Text, rate)
	require.GreaterOrEqual(t, len(got.Stream)-1, 2, "the segments arrive as deltas of their own")
	require.Equal(t, done.Text, joined.String(), "the deltas make the done event's text")
	require.LessOrEqual(t, rate, 0.5, "stream: real speech, recognised")
	t.Logf("stream error: %+v", got.StreamError)
	require.Equal(t, "not_media", got.StreamError.Code, "the failed job's code reaches the client: %+v", got.StreamError)
	require.Nil(t, got.StreamError.Status, "said by an error event, after the stream's 200")

	require.Regexp(t, regexp.MustCompile(`(?s)^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n.+`), got.SRT)
}
