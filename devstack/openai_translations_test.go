package devstack

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	agent "github.com/ytcaption/ytcaption/gpu-node"
)

const openAITranslationScript = `
const fs = require("fs");
const OpenAI = require("openai");
const [baseURL, apiKey, file] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
(async () => {
  const out = {};
  out.json = await client.audio.translations.create({ file: fs.createReadStream(file), model: "whisper-1" });
  out.verbose = await client.audio.translations.create({ file: fs.createReadStream(file), model: "whisper-1", response_format: "verbose_json" });
  out.srt = await client.audio.translations.create({ file: fs.createReadStream(file), model: "whisper-1", response_format: "srt" });
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestOpenAIClientTranslatesSpeech: the official openai npm client's
// audio.translations.create reaches POST /v1/audio/translations, which runs
// a job with the task translate; the stack's gpu-node (engine openai) asks
// a stand-in of OpenAI's documented /v1/audio/translations wire format
// (multipart file, model, response_format verbose_json, no language) and
// the client reads English text in json, verbose_json (task translate) and
// srt.
func TestOpenAIClientTranslatesSpeech(t *testing.T) {
	t.Parallel()
	dir := openAIClient(t)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/audio/translations" || r.ParseMultipartForm(64<<20) != nil {
			http.Error(w, `{"error":{"message":"not a translation request"}}`, http.StatusBadRequest)
			return
		}
		v := r.MultipartForm.Value
		if len(r.MultipartForm.File["file"]) != 1 || len(v["model"]) != 1 || len(v["response_format"]) != 1 || v["response_format"][0] != "verbose_json" || len(v["language"]) != 0 {
			http.Error(w, `{"error":{"message":"bad fields"}}`, http.StatusBadRequest)
			return
		}
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"task": "translate", "language": "english", "duration": 7.0, "text": "And Mr. John Dashwood had then leisure to consider.",
			"segments": []map[string]any{{"id": 0, "start": 0.3, "end": 4.3, "text": " And Mr. John Dashwood had then leisure to consider."}}})
	}))
	t.Cleanup(srv.Close)
	s := startStackWith(t, "yt-dlp", func(c *Config) {
		c.Engine = "openai"
		c.OpenAI = agent.OpenAIConfig{BaseURL: srv.URL, Models: []string{"whisper-1"}}
	})
	script := filepath.Join(t.TempDir(), "translate.js")
	require.NoError(t, os.WriteFile(script, []byte(openAITranslationScript), 0o644))
	cmd := exec.Command("node", script, s.EdgeURL+"/v1", s.APIKey, filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav"))
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
			Task     string `json:"task"`
			Text     string `json:"text"`
			Segments []struct {
				Start float64 `json:"start"`
				Text  string  `json:"text"`
			} `json:"segments"`
		} `json:"verbose"`
		SRT string `json:"srt"`
	}
	require.NoError(t, json.Unmarshal(out, &got), string(out))
	require.Contains(t, got.JSON.Text, "John Dashwood had then leisure")
	require.Equal(t, "translate", got.Verbose.Task)
	require.NotEmpty(t, got.Verbose.Segments)
	require.Contains(t, got.SRT, "00:00:00,300 --> ")
	require.Positive(t, calls.Load())

	// No file: a 400 before any work.
	code, b := client{t: t, base: s.EdgeURL, key: s.APIKey}.do("POST", "/v1/audio/translations", nil)
	require.Equal(t, http.StatusBadRequest, code, string(b))
}

// audioTranslation posts a WAV to /v1/audio/translations as OpenAI's
// clients do.
func audioTranslation(t *testing.T, base, key, wav string) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("file", filepath.Base(wav))
	require.NoError(t, err)
	data, err := os.ReadFile(wav)
	require.NoError(t, err)
	_, err = part.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.WriteField("model", "whisper-1"))
	require.NoError(t, w.Close())
	req, err := http.NewRequest(http.MethodPost, base+"/v1/audio/translations", &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}
