package devstack

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTranslationsThroughTheEdge asks for a finished job's transcript in
// German through the public REST API, with core translating through a
// stand-in of LibreTranslate's documented API (POST /translate, q an
// array): 202 and its state, 409 translation_not_ready until it is done,
// then every format with the original's cue timings; and the refusals.
func TestTranslationsThroughTheEdge(t *testing.T) {
	t.Parallel()
	var gate atomic.Bool // the translator answers only once the test has seen the 409
	var texts atomic.Int64
	libre := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Q      []string `json:"q"`
			Source string   `json:"source"`
			Target string   `json:"target"`
			Format string   `json:"format"`
			APIKey string   `json:"api_key"`
		}
		if r.URL.Path != "/translate" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Format != "text" || req.APIKey != "lt-secret" || req.Source != "en" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		if !gate.Load() {
			http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
			return
		}
		texts.Add(int64(len(req.Q)))
		out := make([]string, len(req.Q))
		for i, q := range req.Q {
			out[i] = "[" + req.Target + "] " + strings.ToUpper(q)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"translatedText": out})
	}))
	t.Cleanup(libre.Close)
	bin := withPortugueseTrack(t)
	s := startStackWith(t, bin, func(c *Config) {
		c.TranslatorKind, c.TranslatorURL, c.TranslatorKey = "libretranslate", libre.URL, "lt-secret"
		c.Lease = 2 * time.Second // a translator's 503 is retried when the lease runs out
	})
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}

	code, b := api.do("POST", "/v1/jobs", map[string]any{"url": "https://www.youtube.com/watch?v=" + captionsMan, "source": "captions", "language": "en"})
	require.Equal(t, http.StatusAccepted, code, string(b))
	var j jobJSON
	require.NoError(t, json.Unmarshal(b, &j))
	j = api.waitFor(j.ID, time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status, "%+v", j.Error)

	for _, lang := range []string{"deutsch", "../../etc/passwd", "de%2F..", "DE", ""} {
		code, b := api.do("POST", "/v1/jobs/"+j.ID+"/translations", map[string]string{"language": lang})
		require.Equal(t, http.StatusBadRequest, code, "%q: %s", lang, b)
		require.Equal(t, "invalid_argument", errorCode(t, b))
	}
	code, b = api.do("GET", "/v1/jobs/"+j.ID+"/transcript?lang=../x", nil)
	require.Equal(t, http.StatusBadRequest, code, string(b))

	code, b = api.do("POST", "/v1/jobs/"+j.ID+"/translations", map[string]string{"language": "de"})
	require.Equal(t, http.StatusAccepted, code, string(b))
	var tr struct {
		State      string `json:"state"`
		Language   string `json:"language"`
		Characters int64  `json:"characters"`
		Cached     bool   `json:"cached"`
	}
	require.NoError(t, json.Unmarshal(b, &tr))
	require.Equal(t, "de", tr.Language)
	require.Contains(t, []string{"queued", "running"}, tr.State)
	require.Positive(t, tr.Characters)
	code, b = api.do("GET", "/v1/jobs/"+j.ID+"/transcript?lang=de", nil)
	require.Equal(t, http.StatusConflict, code, string(b))
	require.Equal(t, "translation_not_ready", errorCode(t, b))
	gate.Store(true)

	deadline := time.Now().Add(time.Minute)
	for {
		code, b := api.do("GET", "/v1/jobs/"+j.ID+"/translations", nil)
		require.Equal(t, http.StatusOK, code, string(b))
		var l struct {
			Translations []struct{ State, Language string } `json:"translations"`
		}
		require.NoError(t, json.Unmarshal(b, &l))
		require.Len(t, l.Translations, 1)
		if l.Translations[0].State == "succeeded" {
			break
		}
		require.NotEqual(t, "failed", l.Translations[0].State, string(b))
		require.True(t, time.Now().Before(deadline), "not translated within a minute: %s", b)
		time.Sleep(100 * time.Millisecond)
	}
	timing := regexp.MustCompile(`(?m)^[\d:.,]+ --> [\d:.,]+`)
	for _, format := range []string{"srt", "vtt", "json", "txt", "tsv"} {
		code, orig := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format="+format, nil)
		require.Equal(t, http.StatusOK, code, string(orig))
		code, de := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format="+format+"&lang=de", nil)
		require.Equal(t, http.StatusOK, code, string(de))
		require.Contains(t, strings.ToUpper(string(de)), "JOHN DASHWOOD", format)
		require.NotContains(t, string(de), "John Dashwood", format)
		require.Equal(t, timing.FindAllString(string(orig), -1), timing.FindAllString(string(de), -1), format)
	}
	code, b = api.do("POST", "/v1/jobs/"+j.ID+"/translations", map[string]string{"language": "de"})
	require.Equal(t, http.StatusOK, code, "asked again once done: the same translation, %s", b)
	code, b = api.do("GET", "/v1/account", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), `"used_translation_chars"`)

	// YouTube's own Portuguese track has the transcript's cues: it is the
	// translation, free, and LibreTranslate is not asked.
	before := texts.Load()
	code, b = api.do("POST", "/v1/jobs/"+j.ID+"/translations", map[string]string{"language": "pt"})
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, code, string(b))
	for {
		code, b := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?lang=pt&format=srt", nil)
		if code == http.StatusOK {
			require.Contains(t, string(b), "quanto poderia estar prudentemente em seu")
			break
		}
		require.Equal(t, http.StatusConflict, code, string(b))
		require.True(t, time.Now().Before(deadline), "not translated within a minute: %s", b)
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, before, texts.Load(), "nothing went to the translator")
	code, b = api.do("GET", "/v1/jobs/"+j.ID+"/translations", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	require.Contains(t, string(b), `"translator":"youtube"`)

	// The command-line client: translate a job, and transcribe with translations.
	env := cliEnv(t, s)
	dir := t.TempDir()
	r := runCLI(t, env, "translate", j.ID, "fr", "--format", "vtt", "-o", filepath.Join(dir, "fr.vtt"))
	require.Equal(t, 0, r.code, r.stderr)
	b, err := os.ReadFile(filepath.Join(dir, "fr.vtt"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "WEBVTT"), string(b))
	require.Contains(t, string(b), "[fr] AND MR. JOHN DASHWOOD")
	r = runCLI(t, env, "translate", j.ID, "deutsch")
	require.Equal(t, 2, r.code, r.stderr)
	r = runCLI(t, env, "transcribe", "https://www.youtube.com/watch?v="+captionsMan, "--source", "captions", "--language", "en",
		"--translate-to", "es,it", "-o", filepath.Join(dir, "clip.srt"))
	require.Equal(t, 0, r.code, r.stderr)
	for _, lang := range []string{"es", "it"} {
		b, err := os.ReadFile(filepath.Join(dir, "clip."+lang+".srt"))
		require.NoError(t, err, r.stderr)
		require.Contains(t, string(b), "["+lang+"] AND MR. JOHN DASHWOOD")
	}

	// Speech to English needs an engine that translates: pocketsphinx does not.
	code, b = audioTranslation(t, s.EdgeURL, s.APIKey, filepath.Join(librivox, "sense_and_sensibility_01_austen_64kb-0880.wav"))
	require.Equal(t, http.StatusBadRequest, code, string(b))
	require.Equal(t, "unsupported_option", errorCode(t, b))

	// Another user's job is nobody else's to translate or read.
	admin := api
	code, b = admin.do("POST", "/v1/admin/users", map[string]string{"name": "mallory"})
	require.Equal(t, http.StatusOK, code, string(b))
	var u struct{ User struct{ ID string } }
	require.NoError(t, json.Unmarshal(b, &u))
	code, b = admin.do("POST", "/v1/admin/users/"+u.User.ID+"/keys", map[string]string{"name": "k"})
	require.Equal(t, http.StatusOK, code, string(b))
	var k struct{ Secret string }
	require.NoError(t, json.Unmarshal(b, &k))
	mallory := client{t: t, base: s.EdgeURL, key: k.Secret}
	for _, r := range [][2]string{{"POST", "/translations"}, {"GET", "/translations"}, {"GET", "/transcript?lang=de"}} {
		code, b := mallory.do(r[0], "/v1/jobs/"+j.ID+r[1], map[string]string{"language": "de"})
		require.Equal(t, http.StatusNotFound, code, "%v: %s", r, b)
		require.Equal(t, "not_found", errorCode(t, b))
	}
}

// withPortugueseTrack is the yt-dlp stand-in (fakeYtDlp) that also has
// YouTube's machine translation into Portuguese of captionsMan's captions —
// the same cues as manual.en.json3 — as yt-dlp writes an automatic track
// asked for with --sub-langs pt,… --write-auto-subs.
func withPortugueseTrack(t *testing.T) string {
	t.Helper()
	inner, _ := fakeYtDlp(t)
	bin := filepath.Join(t.TempDir(), "yt-dlp")
	script := `#!/bin/sh
prev=
for a in "$@"; do
  case "$prev" in --sub-langs) langs="$a" ;; -P) out="$a" ;; esac
  prev="$a"
done
case "$langs" in
  pt,*)
    id=` + captionsMan + `
    printf '{"id":"%s","title":"Captioned (fixture)","duration":6.98,"automatic_captions":{"pt":[{"ext":"json3"}]}}' "$id" > "$out/$id.info.json"
    cat > "$out/$id.pt.json3" <<'JSON'
{"wireMagic":"pb3","events":[
{"tStartMs":310,"dDurationMs":4000,"segs":[{"utf8":"E o Sr. John Dashwood teve então\nvagar para considerar"}]},
{"tStartMs":4400,"dDurationMs":2580,"segs":[{"utf8":"quanto poderia estar prudentemente em seu poder"}]}
]}
JSON
    exit 0 ;;
esac
exec '` + inner + `' "$@"
`
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin
}
