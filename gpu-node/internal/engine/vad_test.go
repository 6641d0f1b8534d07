package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenAIVADFilterWireFormat checks the documented form field of speaches
// and faster-whisper-server: vad_filter, a boolean form field (FastAPI
// parses "true"), on /v1/audio/transcriptions and /v1/audio/translations
// alike. It is sent only when the node is configured for a server that
// takes it and the job's silence guard is on; never otherwise, since
// OpenAI's own API refuses arguments it does not know.
func TestOpenAIVADFilterWireFormat(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("testdata", "speaches_verbose.json"))
	require.NoError(t, err)
	var form map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseMultipartForm(32<<20))
		form = r.MultipartForm.Value
		if v, ok := form["vad_filter"]; ok {
			// As the server's form parsing would: a boolean or a 422.
			if _, err := strconv.ParseBool(v[0]); err != nil || len(v) != 1 {
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	audio := filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav")
	emit := func(Segment) error { return nil }
	for _, tc := range []struct {
		configured, asked bool
		task              string
		want              []string
	}{
		{true, true, "", []string{"true"}},
		{true, true, "translate", []string{"true"}},
		{true, false, "", nil},
		{false, true, "", nil},
	} {
		e, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Models: []string{"Systran/faster-whisper-small"}, VADFilter: tc.configured})
		require.NoError(t, err)
		_, err = e.Transcribe(context.Background(), Request{AudioPath: audio, Language: "en", Task: tc.task, SkipSilence: tc.asked}, emit)
		require.NoError(t, err)
		require.Equal(t, tc.want, form["vad_filter"], "configured %v, asked %v, task %q", tc.configured, tc.asked, tc.task)
	}
}

// TestOpenAIHotwordsWireFormat checks speaches' and faster-whisper-server's
// documented hotwords form field (a string) on /v1/audio/transcriptions: a
// job's vocabulary, comma-separated, only when the node is configured for a
// server that takes it; never on translations, whose endpoint has no such
// field, nor without a vocabulary.
func TestOpenAIHotwordsWireFormat(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("testdata", "speaches_verbose.json"))
	require.NoError(t, err)
	var form map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseMultipartForm(32<<20))
		form = r.MultipartForm.Value
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	audio := filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav")
	emit := func(Segment) error { return nil }
	vocab := []string{"Dashwood", "Norland Park"}
	for _, tc := range []struct {
		configured bool
		task       string
		vocab      []string
		want       []string
	}{
		{true, "", vocab, []string{"Dashwood, Norland Park"}},
		{true, "translate", vocab, nil},
		{true, "", nil, nil},
		{false, "", vocab, nil},
	} {
		e, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Models: []string{"Systran/faster-whisper-small"}, Hotwords: tc.configured})
		require.NoError(t, err)
		_, err = e.Transcribe(context.Background(), Request{AudioPath: audio, Language: "en", Task: tc.task, Prompt: "Dashwood, Norland Park.", Vocabulary: tc.vocab}, emit)
		require.NoError(t, err)
		require.Equal(t, tc.want, form["hotwords"], "configured %v, task %q, vocabulary %q", tc.configured, tc.task, tc.vocab)
		require.Equal(t, []string{"Dashwood, Norland Park."}, form["prompt"], "the prompt is the agent's, unchanged")
	}
}
