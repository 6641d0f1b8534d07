package translate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/translate"
)

// fake is what every stand-in does to a text: a translation anyone can check.
func fake(lang, s string) string { return "[" + lang + "] " + strings.ToUpper(s) }

// longTranscript has n cues; every third sentence runs across two cues.
func longTranscript(n int) job.Transcript {
	t := job.Transcript{JobID: "j", Language: "en"}
	for i := 0; i < n; i++ {
		text := fmt.Sprintf("Cue number %d stands alone.", i)
		if i%3 == 0 && i+1 < n {
			text = fmt.Sprintf("Sentence %d begins here and", i)
		} else if i%3 == 1 {
			text = fmt.Sprintf("it ends in cue %d.", i)
		}
		t.Segments = append(t.Segments, job.Segment{Seq: i, StartMS: int64(i) * 2000, EndMS: int64(i)*2000 + 1900, Text: text,
			Words: []job.Word{{StartMS: int64(i) * 2000, EndMS: int64(i)*2000 + 300, Text: "Cue"}}})
	}
	return t
}

// requireSameTimings: the translation keeps every cue, its timing and order.
func requireSameTimings(t *testing.T, src, got job.Transcript) {
	t.Helper()
	require.Len(t, got.Segments, len(src.Segments))
	for i, s := range src.Segments {
		g := got.Segments[i]
		require.Equal(t, [3]int64{int64(s.Seq), s.StartMS, s.EndMS}, [3]int64{int64(g.Seq), g.StartMS, g.EndMS}, "cue %d", i)
		require.NotEmpty(t, g.Text, "cue %d", i)
		require.Empty(t, g.Words, "a translation has no word timings")
	}
}

// openAIStandIn answers chat completions as OpenAI documents them, checking
// the request precisely; drop > 0 makes it lose the last cue of any batch
// of more than drop cues, as a careless model does.
type openAIStandIn struct {
	t     *testing.T
	drop  int
	calls atomic.Int64
	mu    sync.Mutex
	seen  []int // cues per request
}

func (o *openAIStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" ||
		r.Header.Get("Authorization") != "Bearer sk-test" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		http.Error(w, "bad request line or headers", http.StatusBadRequest)
		return
	}
	var req struct {
		Model          string  `json:"model"`
		Temperature    float64 `json:"temperature"`
		ResponseFormat struct {
			Type string `json:"type"`
		} `json:"response_format"`
		Messages []struct {
			Role, Content string
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "qwen2.5:7b" || req.ResponseFormat.Type != "json_object" ||
		len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" ||
		!strings.Contains(req.Messages[0].Content, `"de"`) {
		http.Error(w, "not a chat completion request", http.StatusBadRequest)
		return
	}
	var in struct {
		Before []string `json:"before"`
		Cues   []struct {
			ID   int    `json:"id"`
			Text string `json:"text"`
		} `json:"cues"`
		After []string `json:"after"`
	}
	if err := json.Unmarshal([]byte(req.Messages[1].Content), &in); err != nil || in.Before == nil || in.After == nil {
		http.Error(w, "user message is not the cues' JSON", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.seen = append(o.seen, len(in.Cues))
	o.mu.Unlock()
	type cue struct {
		ID   int    `json:"id"`
		Text string `json:"text"`
	}
	var out struct {
		Cues []cue `json:"cues"`
	}
	for _, c := range in.Cues {
		out.Cues = append(out.Cues, cue{c.ID, fake("de", c.Text)})
	}
	if o.drop > 0 && len(out.Cues) > o.drop {
		out.Cues = out.Cues[:len(out.Cues)-1]
	}
	content, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": "```json\n" + string(content) + "\n```"}}},
	})
}

func newTranslator(t *testing.T, kind, url string) translate.Translator {
	t.Helper()
	key := map[string]string{"openai": "sk-test", "libretranslate": "lt-key", "deepl": "dl-key"}[kind]
	tr, err := translate.New(translate.Config{Kind: kind, URL: url, Key: key, Model: "qwen2.5:7b"})
	require.NoError(t, err)
	return tr
}

func TestOpenAIChatCompletionsWireFormatTranslatesALongTranscriptCueForCue(t *testing.T) {
	t.Parallel()
	stand := &openAIStandIn{t: t}
	srv := httptest.NewServer(stand)
	t.Cleanup(srv.Close)
	src := longTranscript(400)
	got, err := translate.Transcript(context.Background(), newTranslator(t, "openai", srv.URL), src, "de")
	require.NoError(t, err)
	requireSameTimings(t, src, got)
	require.Equal(t, "de", got.Language)
	for i, s := range src.Segments {
		require.Equal(t, fake("de", s.Text), got.Segments[i].Text, "a model keeps cues apart")
	}
	require.Equal(t, int64(10), stand.calls.Load(), "400 cues go in batches of 40")
}

func TestOpenAIAnswerMissingACueIsSplitAndRetried(t *testing.T) {
	t.Parallel()
	stand := &openAIStandIn{t: t, drop: 1} // any batch of two or more loses a cue
	srv := httptest.NewServer(stand)
	t.Cleanup(srv.Close)
	src := longTranscript(12)
	got, err := translate.Transcript(context.Background(), newTranslator(t, "openai", srv.URL), src, "de")
	require.NoError(t, err)
	requireSameTimings(t, src, got)
	for i, s := range src.Segments {
		require.Equal(t, fake("de", s.Text), got.Segments[i].Text)
	}
	require.Contains(t, stand.seen, 12, "the whole batch was tried first")
	require.Contains(t, stand.seen, 1, "and halved down to single cues")
}

func TestLibreTranslateWireFormatKeepsSentencesSplitAcrossCuesWhole(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req map[string]any
		if r.Method != http.MethodPost || r.URL.Path != "/translate" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		q, ok := req["q"].([]any)
		if !ok || req["source"] != "en" || req["target"] != "de" || req["format"] != "text" || req["api_key"] != "lt-key" || len(req) != 5 {
			http.Error(w, `{"error":"bad parameters"}`, http.StatusBadRequest)
			return
		}
		out := make([]string, len(q))
		for i, s := range q {
			out[i] = fake("de", s.(string))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"translatedText": out})
	}))
	t.Cleanup(srv.Close)
	src := longTranscript(300)
	got, err := translate.Transcript(context.Background(), newTranslator(t, "libretranslate", srv.URL), src, "de")
	require.NoError(t, err)
	requireSameTimings(t, src, got)
	// A sentence over cues i and i+1 was translated as one and shared out:
	// together the two cues are the whole sentence's translation.
	for i := 0; i+1 < len(src.Segments); i += 3 {
		whole := fake("de", src.Segments[i].Text+" "+src.Segments[i+1].Text)
		require.Equal(t, whole, got.Segments[i].Text+" "+got.Segments[i+1].Text, "sentence at cue %d", i)
	}
	require.Equal(t, fake("de", src.Segments[2].Text), got.Segments[2].Text)
	require.Greater(t, calls.Load(), int64(1))
}

func TestDeepLWireFormatSendsContextAndUpperCaseLanguages(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var contexts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text       []string `json:"text"`
			TargetLang string   `json:"target_lang"`
			SourceLang string   `json:"source_lang"`
			Context    string   `json:"context"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v2/translate" || r.Header.Get("Authorization") != "DeepL-Auth-Key dl-key" ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.NewDecoder(r.Body).Decode(&req) != nil ||
			req.TargetLang != "DE" || req.SourceLang != "EN" || len(req.Text) == 0 || len(req.Text) > 50 {
			http.Error(w, `{"message":"Bad request"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		contexts = append(contexts, req.Context)
		mu.Unlock()
		type tr struct {
			DetectedSourceLanguage string `json:"detected_source_language"`
			Text                   string `json:"text"`
		}
		out := struct {
			Translations []tr `json:"translations"`
		}{}
		for _, s := range req.Text {
			out.Translations = append(out.Translations, tr{"EN", fake("de", s)})
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	src := longTranscript(200)
	got, err := translate.Transcript(context.Background(), newTranslator(t, "deepl", srv.URL), src, "de")
	require.NoError(t, err)
	requireSameTimings(t, src, got)
	require.GreaterOrEqual(t, len(contexts), 2)
	require.Contains(t, contexts[1], "stands alone", "a later batch gets the cues before it as context")
}

func TestDeepLTargetsNameTheirVariant(t *testing.T) {
	t.Parallel()
	var target string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text       []string `json:"text"`
			TargetLang string   `json:"target_lang"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		target = req.TargetLang
		_, _ = io.WriteString(w, `{"translations":[{"detected_source_language":"DE","text":"Hello."}]}`)
	}))
	t.Cleanup(srv.Close)
	src := job.Transcript{Language: "de", Segments: []job.Segment{{Text: "Hallo."}}}
	_, err := translate.Transcript(context.Background(), newTranslator(t, "deepl", srv.URL), src, "en")
	require.NoError(t, err)
	require.Equal(t, "EN-US", target, "DeepL refuses a bare EN target")
}

func TestTranslatorAnswersAreBounded(t *testing.T) {
	t.Parallel()
	src := job.Transcript{Language: "en", Segments: []job.Segment{{Text: "Hello."}, {Text: "World."}}}
	for name, h := range map[string]http.HandlerFunc{
		"larger than the read limit": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"translatedText":["`+strings.Repeat("x", translate.MaxResponseBytes)+`"]}`)
		},
		"a text ten times its source": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"translatedText":["`+strings.Repeat("y", 500)+`"]}`)
		},
		"more texts than sent": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"translatedText":["a","b","c"]}`)
		},
		"a refused key": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"Invalid API key"}`, http.StatusForbidden)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			_, err := translate.Transcript(context.Background(), newTranslator(t, "libretranslate", srv.URL), src, "de")
			require.Error(t, err)
		})
	}
}

func TestLanguagesAndTextsAreCheckedBeforeAnythingIsSent(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	tr := newTranslator(t, "libretranslate", srv.URL)
	ok := job.Transcript{Language: "en", Segments: []job.Segment{{Text: "Hello."}}}
	for _, lang := range []string{"", "../../etc", "de/../x", "deutsch", "DE", "de\n", "zz-toolongvariant", strings.Repeat("a", 1000)} {
		_, err := translate.Transcript(context.Background(), tr, ok, lang)
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err), "%q", lang)
	}
	long := job.Transcript{Language: "en", Segments: []job.Segment{{Text: strings.Repeat("a", translate.MaxCueChars+1)}}}
	_, err := translate.Transcript(context.Background(), tr, long, "de")
	require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
	require.Zero(t, calls.Load())
}

func TestNewRefusesAnIncompleteConfiguration(t *testing.T) {
	t.Parallel()
	tr, err := translate.New(translate.Config{})
	require.NoError(t, err)
	require.Nil(t, tr, "no kind: no translator")
	for _, c := range []translate.Config{{Kind: "openai", URL: "http://x"}, {Kind: "libretranslate"}, {Kind: "deepl"}, {Kind: "google"}} {
		_, err := translate.New(c)
		require.Error(t, err, "%+v", c)
	}
	free, err := translate.New(translate.Config{Kind: "deepl", Key: "k:fx"})
	require.NoError(t, err)
	require.Equal(t, "https://api-free.deepl.com", free.(*translate.DeepL).URL)
}
