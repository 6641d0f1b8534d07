package engine

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/waittest"
	"github.com/ytcaption/ytcaption/internal/wer"
)

const librivox = "/usr/share/pocketsphinx/test/data/librivox"

func reference(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(librivox, "transcription"))
	require.NoError(t, err)
	m := regexp.MustCompile(`<s> (.*) </s> \(` + regexp.QuoteMeta(id) + `\)`).FindStringSubmatch(string(b))
	require.NotNil(t, m)
	return m[1]
}

func checkSegments(t *testing.T, segs []Segment) {
	t.Helper()
	require.NotEmpty(t, segs)
	prev := int64(-1)
	for _, s := range segs {
		require.GreaterOrEqual(t, s.StartMS, prev, "segments in time order")
		require.Less(t, s.StartMS, s.EndMS)
		require.NotEmpty(t, s.Text)
		for _, w := range s.Words {
			require.GreaterOrEqual(t, w.StartMS, s.StartMS, "word %q inside its segment", w.Text)
			require.LessOrEqual(t, w.EndMS, s.EndMS, "word %q inside its segment", w.Text)
		}
		prev = s.EndMS
	}
}

func TestSphinxTranscribesLibriVox(t *testing.T) {
	t.Parallel()
	id := "sense_and_sensibility_01_austen_64kb-0870"
	var segs []Segment
	res, err := NewSphinx(SphinxConfig{}).Transcribe(context.Background(), Request{AudioPath: filepath.Join(librivox, id+".wav"), Language: "en"},
		func(s Segment) error { segs = append(segs, s); return nil })
	require.NoError(t, err)
	require.Equal(t, "en", res.Language)
	checkSegments(t, segs)
	var hyp []string
	for _, s := range segs {
		hyp = append(hyp, s.Text)
		require.NotContains(t, s.Text, "(", "alternate-pronunciation markers removed")
		require.NotContains(t, s.Text, "<sil>")
	}
	rate := wer.Rate(reference(t, id), strings.Join(hyp, " "))
	t.Logf("WER %.3f: %q", rate, strings.Join(hyp, " "))
	require.Less(t, rate, 0.6)
}

// TestSphinxTimesAreAbsolute checks the second utterance of a file with two
// clips and silence between them is timed from the start of the file.
func TestSphinxTimesAreAbsolute(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "two.wav")
	out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-y",
		"-i", filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav"),
		"-f", "lavfi", "-t", "3", "-i", "anullsrc=r=16000:cl=mono",
		"-i", filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0930.wav"),
		"-filter_complex", "[0:a][1:a][2:a]concat=n=3:v=0:a=1", "-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", path).CombinedOutput()
	require.NoError(t, err, string(out))
	var segs []Segment
	_, err = NewSphinx(SphinxConfig{}).Transcribe(context.Background(), Request{AudioPath: path}, func(s Segment) error { segs = append(segs, s); return nil })
	require.NoError(t, err)
	checkSegments(t, segs)
	require.GreaterOrEqual(t, len(segs), 2)
	last := segs[len(segs)-1]
	require.Greater(t, last.StartMS, int64(5990), "the second clip starts after 2.99 s of speech and 3 s of silence")
}

func TestSphinxStopsOnCancelAndOnEmitError(t *testing.T) {
	t.Parallel()
	// Long input: the ten-clip concatenation takes pocketsphinx many seconds.
	var list strings.Builder
	entries, _ := filepath.Glob(filepath.Join(librivox, "*.wav"))
	for range 4 {
		for _, e := range entries {
			list.WriteString("file '" + e + "'\n")
		}
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "list"), []byte(list.String()), 0o644))
	long := filepath.Join(dir, "long.wav")
	out, err := exec.Command("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", filepath.Join(dir, "list"), "-c", "copy", long).CombinedOutput()
	require.NoError(t, err, string(out))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, err := NewSphinx(SphinxConfig{}).Transcribe(ctx, Request{AudioPath: long}, func(Segment) error { return nil })
		done <- err
	}()
	require.ErrorIs(t, waittest.Recv(t, done, 20*time.Second, "pocketsphinx still running after the cancel"), context.Canceled)

	stop := errors.New("stop")
	_, err = NewSphinx(SphinxConfig{}).Transcribe(context.Background(), Request{AudioPath: long}, func(Segment) error { return stop })
	require.ErrorIs(t, err, stop)
}

func TestSphinxRefusesOtherLanguages(t *testing.T) {
	t.Parallel()
	_, err := NewSphinx(SphinxConfig{}).Transcribe(context.Background(), Request{AudioPath: "x.wav", Language: "de"}, nil)
	require.ErrorIs(t, err, ErrUnsupported)
}

func TestParseSphinxOutput(t *testing.T) {
	t.Parallel()
	out := `he was not
<s> 0.140 0.220 0.999700
he 0.230 0.330 0.993322
was(2) 0.340 0.560 0.993024
[SPEECH] 0.990 1.120 0.527464
<sil> 1.2 1.3 0.9
++UM++ 1.3 1.4 0.9
not 1.570 1.980 0.998501
</s> 2.810 3.100 1.000000
a b c d
<s> 4.880 4.970 1.000300
end 5.0 5.5 1.2
</s> 5.6 5.7 1.0
`
	var segs []Segment
	require.NoError(t, ParseSphinx(strings.NewReader(out), func(s Segment) error { segs = append(segs, s); return nil }))
	require.Len(t, segs, 2)
	require.Equal(t, "he was not", segs[0].Text)
	require.Equal(t, int64(230), segs[0].StartMS)
	require.Equal(t, int64(1980), segs[0].EndMS)
	require.Equal(t, "end", segs[1].Text)
	require.Equal(t, float32(1), segs[1].Words[0].Probability, "clamped to 1")
}

// TestOpenAIWireFormat checks the adapter against recorded responses in the
// documented shapes of OpenAI's API and of speaches (faster-whisper). No such
// server can run here, so this checks the documented wire format: the
// multipart request it sends and the verbose_json it parses.
func TestOpenAIWireFormat(t *testing.T) {
	t.Parallel()
	audio := filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav")
	for _, tc := range []struct {
		fixture, lang string
		segments      int
		firstWords    []string
	}{
		{"openai_verbose.json", "en", 2, []string{"The", "beach", "was"}},
		{"speaches_verbose.json", "en", 1, []string{"He", "was", "not"}},
	} {
		body, err := os.ReadFile(filepath.Join("testdata", tc.fixture))
		require.NoError(t, err)
		var got *http.Request
		var form map[string][]string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r
			require.NoError(t, r.ParseMultipartForm(32<<20))
			form = r.MultipartForm.Value
			f, _, err := r.FormFile("file")
			require.NoError(t, err)
			n, _ := io.Copy(io.Discard, f)
			want, _ := os.Stat(audio)
			require.Equal(t, want.Size(), n, "the whole file is uploaded")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
		e, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + "/", APIKey: "sk-test", Model: "whisper-1"})
		require.NoError(t, err)
		var segs []Segment
		res, err := e.Transcribe(context.Background(), Request{AudioPath: audio, Language: "en"}, func(s Segment) error { segs = append(segs, s); return nil })
		srv.Close()
		require.NoError(t, err, tc.fixture)
		require.Equal(t, "/v1/audio/transcriptions", got.URL.Path)
		require.Equal(t, "Bearer sk-test", got.Header.Get("Authorization"))
		require.Equal(t, []string{"whisper-1"}, form["model"])
		require.Equal(t, []string{"verbose_json"}, form["response_format"])
		require.Equal(t, []string{"segment", "word"}, form["timestamp_granularities[]"])
		require.Equal(t, []string{"en"}, form["language"])
		require.Equal(t, tc.lang, res.Language, "language names map to codes")
		require.Len(t, segs, tc.segments, "%s: the repetition loop is dropped", tc.fixture)
		checkSegments(t, segs)
		for i, w := range tc.firstWords {
			require.Equal(t, w, segs[0].Words[i].Text)
		}
	}
}

func TestOpenAIWireFormatErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"message":"Unsupported language: xx","type":"invalid_request_error"}}`))
	}))
	defer srv.Close()
	e, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Model: "whisper-1"})
	require.NoError(t, err)
	_, err = e.Transcribe(context.Background(), Request{AudioPath: filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav"), Language: "xx"}, nil)
	require.ErrorIs(t, err, ErrUnsupported)
	require.ErrorContains(t, err, "Unsupported language: xx")
	_, err = NewOpenAI(OpenAIConfig{})
	require.Error(t, err)
}

// TestWhisperCPPWireFormat runs a stand-in for whisper-cli that records its
// arguments and writes a recorded -ojf JSON file. whisper.cpp is not installed
// here, so this checks the documented command line and output format.
func TestWhisperCPPWireFormat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin, argv := fakeWhisperCLI(t, dir)
	models := modelsDir(t, "ggml-base.en.bin")
	audio := filepath.Join(dir, "audio.wav")
	require.NoError(t, os.WriteFile(audio, []byte("RIFF"), 0o644))
	e, err := NewWhisperCPP(WhisperCPPConfig{Binary: bin, ModelsDir: models, Model: "base.en", Threads: 4})
	require.NoError(t, err)
	var segs []Segment
	res, err := e.Transcribe(context.Background(), Request{AudioPath: audio, Language: "auto"}, func(s Segment) error { segs = append(segs, s); return nil })
	require.NoError(t, err)
	require.Equal(t, "en", res.Language)
	require.Len(t, segs, 1)
	checkSegments(t, segs)
	var words []string
	for _, w := range segs[0].Words {
		words = append(words, w.Text)
	}
	require.Equal(t, []string{"He", "was", "not", "an", "ill-disposed", "young", "man."}, words, "sub-word tokens joined, special tokens dropped")
	b, err := os.ReadFile(argv)
	require.NoError(t, err)
	args := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Equal(t, []string{"-m", filepath.Join(models, "ggml-base.en.bin"), "-f", audio, "-l", "auto", "-oj", "-ojf", "-of"}, args[:9])
	require.Equal(t, []string{"-np", "-t", "4"}, args[10:])
	_, err = NewWhisperCPP(WhisperCPPConfig{})
	require.Error(t, err, "a default model is required")
}

// TestOpenAITranslationAndPromptWireFormat: translation is OpenAI's
// /v1/audio/translations, which takes no language nor timestamp
// granularities; a prompt travels as the "prompt" field either way.
func TestOpenAITranslationAndPromptWireFormat(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(filepath.Join("testdata", "openai_verbose.json"))
	require.NoError(t, err)
	var path string
	var form map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		require.NoError(t, r.ParseMultipartForm(32<<20))
		form = r.MultipartForm.Value
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	e, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL, Models: []string{"whisper-1"}})
	require.NoError(t, err)
	audio := filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav")
	emit := func(Segment) error { return nil }

	_, err = e.Transcribe(context.Background(), Request{AudioPath: audio, Language: "de", Task: "translate", Prompt: "Dashwood, Norland"}, emit)
	require.NoError(t, err)
	require.Equal(t, "/v1/audio/translations", path)
	require.Equal(t, []string{"Dashwood, Norland"}, form["prompt"])
	require.NotContains(t, form, "language")
	require.NotContains(t, form, "timestamp_granularities[]")
	require.Equal(t, []string{"verbose_json"}, form["response_format"])

	_, err = e.Transcribe(context.Background(), Request{AudioPath: audio, Language: "en", Prompt: "Dashwood"}, emit)
	require.NoError(t, err)
	require.Equal(t, "/v1/audio/transcriptions", path)
	require.Equal(t, []string{"Dashwood"}, form["prompt"])
	require.Equal(t, []string{"en"}, form["language"])
}

func TestWhisperCPPTranslationAndPromptArgs(t *testing.T) {
	t.Parallel()
	e, err := NewWhisperCPP(WhisperCPPConfig{ModelsDir: modelsDir(t, "m.bin"), Model: "m"})
	require.NoError(t, err)
	args, err := e.Args(Request{AudioPath: "a.wav", Language: "de", Task: "translate", Prompt: "Dashwood"}, "/tmp/out")
	require.NoError(t, err)
	require.Contains(t, args, "-tr")
	i := slices.Index(args, "--prompt")
	require.Equal(t, []string{"--prompt", "Dashwood"}, args[i:i+2])
	args, err = e.Args(Request{AudioPath: "a.wav"}, "/tmp/out")
	require.NoError(t, err)
	require.NotContains(t, args, "-tr")
}

func TestSphinxRefusesToTranslate(t *testing.T) {
	t.Parallel()
	_, err := NewSphinx(SphinxConfig{}).Transcribe(context.Background(), Request{AudioPath: "x.wav", Task: "translate"}, nil)
	require.ErrorIs(t, err, ErrUnsupported)
}
