package devstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	agent "github.com/ytcaption/ytcaption/gpu-node"
	"github.com/ytcaption/ytcaption/internal/wav"
)

// pausedSpeech writes a WAV file of flite's slt voice saying sentences with
// pause of digital silence before, between and after them, and returns
// where each sentence lies, in seconds.
func pausedSpeech(t *testing.T, path string, pause time.Duration, sentences ...string) [][2]float64 {
	t.Helper()
	var pcm []byte
	var at [][2]float64
	silence := make([]byte, wav.DataBytes(pause))
	secs := func() float64 { return wav.DataDuration(int64(len(pcm))).Seconds() }
	for _, s := range sentences {
		pcm = append(pcm, silence...)
		one := filepath.Join(t.TempDir(), "s.wav")
		out, err := exec.Command("flite", "-voice", "slt", "-t", s, "-o", one).CombinedOutput()
		require.NoError(t, err, "flite (make deps installs it): %s", out)
		f, err := os.Open(one)
		require.NoError(t, err)
		start, n, err := wav.FindData(f)
		require.NoError(t, err)
		b := make([]byte, n)
		_, err = f.ReadAt(b, start)
		f.Close()
		require.NoError(t, err)
		from := secs()
		pcm = append(pcm, b...)
		at = append(at, [2]float64{from, secs()})
	}
	pcm = append(pcm, silence...)
	require.NoError(t, wav.Write(path, bytes.NewReader(pcm), int64(len(pcm))))
	return at
}

// TestGuardsAndVocabularyThroughTheStack: flite speech with long pauses, on
// a gpu-node whose openai engine talks to a stand-in of a Whisper server
// (speaches' verbose_json, its documented vad_filter form field) that
// hallucinates as Whisper does — sentences in the pauses, a phrase looping,
// a segment said twice. With the default guards only the real sentences
// reach the transcript, spelled as the job's vocabulary says, and the job
// says what was removed; with the guards off everything does. The bounds on
// a vocabulary are 400s, and GET /v1/models lists the node's models in
// OpenAI's shape.
func TestGuardsAndVocabularyThroughTheStack(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("flite"); err != nil {
		t.Skip("flite not installed (make deps installs it)")
	}
	dir := t.TempDir()
	sentences := []string{"the birch canoe slid on the smooth planks", "glue the sheet to the dark blue background", "it is easy to tell the depth of a well"}
	at := pausedSpeech(t, filepath.Join(dir, "paused.wav"), 6*time.Second, sentences...)
	media := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(media.Close)

	type seg struct {
		Start, End       float64
		Text             string
		CompressionRatio float64 `json:"compression_ratio"`
	}
	segs := []seg{
		{at[0][0] - 5, at[0][0] - 2, " Thank you for watching.", 1.2},
		{at[0][0], at[0][1], " " + sentences[0], 1.3},
		{at[1][0], at[1][1], " " + sentences[1] + strings.Repeat(" the dark blue background", 5), 2.0},
		{at[1][1] - 1, at[1][1], " " + sentences[1], 1.3},
		{at[2][0] - 4, at[2][0] - 1, " Please subscribe.", 1.1},
		{at[2][0], at[2][1], " " + sentences[2], 1.3},
		{at[2][1] + 2, at[2][1] + 5, " Thank you.", 1.0},
	}
	body, err := json.Marshal(map[string]any{"language": "en", "duration": at[2][1] + 6, "text": "", "segments": segs})
	require.NoError(t, err)
	var mu sync.Mutex
	var forms []map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/transcriptions" || r.ParseMultipartForm(64<<20) != nil {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		forms = append(forms, r.MultipartForm.Value)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	s := startStackWith(t, "yt-dlp", func(c *Config) {
		c.Engine = "openai"
		c.OpenAI = agent.OpenAIConfig{BaseURL: srv.URL, Models: []string{"Systran/faster-whisper-small"}, VADFilter: true}
	})
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	url := media.URL + "/paused.wav"

	// The bounds, before any work.
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("term%d", i)
	}
	for _, bad := range []map[string]any{
		{"url": url, "vocabulary": many},
		{"url": url, "vocabulary": []string{strings.Repeat("k", 65)}},
		{"url": url, "vocabulary": []string{"Nomad\r\nIgnore"}},
		{"url": url, "vocabulary": "Nomad"},
		{"url": url, "guards": map[string]any{"music": true}},
		{"url": url, "guards": map[string]any{"silence": "no"}},
	} {
		code, b := api.do("POST", "/v1/jobs", bad)
		require.Equal(t, http.StatusBadRequest, code, "%v: %s", bad, b)
		require.Equal(t, "invalid_argument", errorCode(t, b), "%v", bad)
	}

	type guardedJob struct {
		jobJSON
		Vocabulary []string `json:"vocabulary"`
	}
	run := func(req map[string]any) (guardedJob, map[string]any, string) {
		t.Helper()
		code, b := api.do("POST", "/v1/jobs", req)
		require.Equal(t, http.StatusAccepted, code, string(b))
		var j guardedJob
		require.NoError(t, json.Unmarshal(b, &j))
		done := api.waitFor(j.ID, 2*time.Minute, terminal)
		require.Equal(t, "succeeded", done.Status, "%+v", done.Error)
		code, b = api.do("GET", "/v1/jobs/"+j.ID, nil)
		require.Equal(t, http.StatusOK, code)
		var raw map[string]any
		require.NoError(t, json.Unmarshal(b, &raw))
		code, txt := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=txt", nil)
		require.Equal(t, http.StatusOK, code)
		return j, raw, string(txt)
	}

	guarded, raw, txt := run(map[string]any{"url": url, "language": "en", "vocabulary": []string{"Birch Canoe", "Dark Blue"}})
	require.Equal(t, []string{"Birch Canoe", "Dark Blue"}, guarded.Vocabulary)
	require.Equal(t, map[string]any{"silence": true, "repetition": true, "silence_dropped": 3.0, "repetition_dropped": 1.0, "repetition_trimmed": 1.0},
		raw["guards"], "the job says what the guards removed")
	want := []string{"the Birch Canoe slid on the smooth planks", "glue the sheet to the Dark Blue background", "it is easy to tell the depth of a well"}
	require.Equal(t, strings.Join(want, " "), strings.Join(strings.Fields(txt), " "), "exactly the real sentences, spelled as asked")
	code, b := api.do("GET", "/v1/jobs/"+guarded.ID+"/transcript?format=json", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, raw["guards"], doc["guards"], "the JSON transcript says what was removed too")

	_, raw, txt = run(map[string]any{"url": url, "language": "en", "guards": map[string]any{"silence": false, "repetition": false}})
	require.Equal(t, map[string]any{"silence": false, "repetition": false, "silence_dropped": 0.0, "repetition_dropped": 0.0, "repetition_trimmed": 0.0},
		raw["guards"])
	for _, invented := range []string{"Thank you for watching.", "Please subscribe.", "background the dark blue background"} {
		require.Contains(t, txt, invented, "without the guards the invented text stays")
	}

	mu.Lock()
	require.Len(t, forms, 2)
	require.Equal(t, []string{"true"}, forms[0]["vad_filter"], "the server is asked to skip non-speech for a guarded job")
	require.Equal(t, []string{"Birch Canoe, Dark Blue."}, forms[0]["prompt"], "the vocabulary is the prompt")
	require.NotContains(t, forms[1], "vad_filter")
	require.NotContains(t, forms[1], "prompt")
	mu.Unlock()

	code, b = api.do("GET", "/v1/models", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	var list struct {
		Object string
		Data   []map[string]any
	}
	require.NoError(t, json.Unmarshal(b, &list))
	require.Equal(t, "list", list.Object)
	require.Len(t, list.Data, 1, string(b))
	m := list.Data[0]
	require.Equal(t, "Systran/faster-whisper-small", m["id"])
	require.Equal(t, "model", m["object"])
	require.Equal(t, "openai", m["owned_by"])
	require.Greater(t, m["created"], 1.7e9)
}
