package devstack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/browsertest"
)

// appMediaServer serves one LibriVox clip of Debian's pocketsphinx test data as
// a WAV file on loopback, as someone's own web server would — the "local
// media URL" the browser test pastes — and a page that plays it with two
// caption tracks of its own (English and Spanish WebVTT), which the real
// yt-dlp lists. file is the clip's path, for the upload.
func appMediaServer(t *testing.T) (wav, page, file string) {
	t.Helper()
	const clip = "sense_and_sensibility_01_austen_64kb-0870.wav"
	file = filepath.Join(librivox, clip)
	_, err := os.Stat(file)
	require.NoError(t, err, "install pocketsphinx-testdata (make deps)")
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(librivox)))
	mux.HandleFunc("/talk.html", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<html><head><title>A talk</title></head><body><video controls src="/%s">`+
			`<track kind="subtitles" src="/en.vtt" srclang="en" label="English">`+
			`<track kind="subtitles" src="/es.vtt" srclang="es" label="Español"></video></body></html>`, clip)
	})
	for _, lang := range []string{"en", "es"} {
		mux.HandleFunc("/"+lang+".vtt", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "WEBVTT\n\n00:00.000 --> 00:02.000\n%s\n", lang)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/" + clip, srv.URL + "/talk.html", file
}

// TestWebAppInABrowser is the user web app's whole path in headless Chromium:
// sign in, see the caption tracks a page already has, paste a local media
// URL, watch the transcript arrive, split and merge a cue, edit a cue's text
// and timing, save revision 1, download the SRT with the edit, reload and
// find revision 1 with the original still at 0, lose a save to another tab
// and load the latest, rename a speaker, share and revoke a link, upload a
// file, search, filter and delete in my jobs, see a failure explained,
// cancel a job, sign out; another user finds the job "not found". Each page passes
// the accessibility check. With YTCAPTION_SCREENSHOTS=<dir> it also saves
// each page at desktop and phone width (docs/screenshots).
func TestWebAppInABrowser(t *testing.T) {
	t.Parallel()
	// The generic extractors read the caption tracks of the test's page.
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.YtDlpExtractors = "generic,html5" })
	media, page, file := appMediaServer(t)
	admin := client{t: t, base: s.EdgeURL, key: s.APIKey}
	aliceKey, _ := newUser(t, admin, "alice")
	bobKey, _ := newUser(t, admin, "bob")
	app := s.EdgeURL

	ctx := browsertest.Start(t)
	type css = chromedp.CSS
	do := browsertest.Steps(t, ctx, 60*time.Second)
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		require.NoError(t, err, js)
		return v
	}
	shots := os.Getenv("YTCAPTION_SCREENSHOTS")
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		for _, size := range []struct {
			name string
			w, h int64
		}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
			var png []byte
			do("resize for "+name, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`), chromedp.EmulateViewport(size.w, size.h), chromedp.Evaluate[chromedp.Void](`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
			if size.name == "phone" {
				w := eval(`String(document.documentElement.scrollWidth)`)
				require.Equal(t, "390", w, "%s: no horizontal overflow at phone width", name)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(shots, fmt.Sprintf("app-%s-%s.png", name, size.name)), png, 0o644))
		}
		do("back to desktop", chromedp.EmulateViewport(1280, 800))
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.EmulateViewport(1280, 800)), "start the browser")

	do("a signed-out visit lands on the sign-in form", chromedp.Navigate(app+"/jobs"), chromedp.WaitVisible(css(`#signin`)))
	browsertest.Audit(t, ctx, "sign-in")
	shot("signin")
	do("a wrong key is refused", chromedp.SendKeys(css(`#key`), "not-a-key"), chromedp.Click(css(`#signin button`)),
		chromedp.WaitVisible(css(`#signin-msg .notice.error`)))
	do("alice signs in and goes where she was going", chromedp.Evaluate[chromedp.Void](`document.getElementById("key").value = ""`), chromedp.SendKeys(css(`#key`), aliceKey),
		chromedp.Click(css(`#signin button`)), chromedp.WaitVisible(css(`table#jobs`)))
	require.Equal(t, "", eval(`document.cookie`), "the session cookie is HttpOnly: scripts cannot read it")

	do("new captions from a pasted link", chromedp.Click(css(`#nav a[href="/new"]`)), chromedp.WaitVisible(css(`#url`)))
	browsertest.Audit(t, ctx, "new captions")
	shot("new")
	do("a page's own caption tracks are listed before any GPU time is spent",
		chromedp.Evaluate[chromedp.Void](`(() => { const u = document.getElementById("url"); u.value = `+jsString(page)+`; u.dispatchEvent(new Event("change")); })()`),
		chromedp.WaitVisible(css(`#track-list`)))
	tracks := eval(`document.getElementById("track-list").textContent`)
	require.Contains(t, tracks, "(en)")
	require.Contains(t, tracks, "(es)")
	do("start", chromedp.Evaluate[chromedp.Void](`document.getElementById("url").value = ""`), chromedp.SendKeys(css(`#url`), media), chromedp.Click(css(`#start-url`)), chromedp.WaitVisible(css(`#stage`)))
	loc := eval(`location.pathname`)
	require.True(t, strings.HasPrefix(loc, "/jobs/"), loc)
	id := strings.TrimPrefix(loc, "/jobs/")
	// The segments arrive on the job's event stream, each as it is written;
	// the record says what the stage was when each one appeared.
	eval(`(window.seen = [], new MutationObserver(() => window.seen.push(document.getElementById("status").textContent))
		.observe(document.getElementById("segments"), {childList: true}), "")`)
	do("segments appear as the transcriber writes them", chromedp.WaitVisible(css(`#segments li[data-seq]`)))
	do("and the job finishes", chromedp.WaitVisible(css(`#open-editor`)))
	t.Logf("stage as each segment arrived: %s", eval(`JSON.stringify(window.seen)`))
	browsertest.Audit(t, ctx, "job")
	shot("job")

	do("the editor", chromedp.Click(css(`#open-editor`)), chromedp.WaitVisible(css(`#cues li textarea`)))
	browsertest.Audit(t, ctx, "editor")
	original := eval(`document.querySelector("#cues li textarea").value`)
	require.NotEmpty(t, original)
	cues := func() string { return eval(`String(document.querySelectorAll("#cues li textarea").length)`) }
	before := cues()
	do("split the first cue", chromedp.Click(css(`#cues li .split`)))
	require.Equal(t, fmt.Sprint(atoi(t, before)+1), cues(), "a split makes two cues of one")
	halves := eval(`[...document.querySelectorAll("#cues li textarea")].slice(0, 2).map((t) => t.value).join(" ")`)
	require.Equal(t, strings.Join(strings.Fields(original), " "), halves, "the halves hold the words in order")
	do("and merge the halves again", chromedp.Click(css(`#cues li .merge`)))
	require.Equal(t, before, cues())
	require.Equal(t, strings.Join(strings.Fields(original), " "), eval(`document.querySelector("#cues li textarea").value`))
	end := eval(`document.querySelector("#cues li input.end").value`)
	do("a cue too fast to read is flagged, not changed", chromedp.Evaluate[chromedp.Void](`(() => {
		const t = document.querySelector("#cues li textarea"); t.value = "word ".repeat(80); t.dispatchEvent(new Event("input")); })()`))
	require.Contains(t, eval(`document.querySelector("#cues li .warnings").textContent`), "characters per second")
	require.Equal(t, end, eval(`document.querySelector("#cues li input.end").value`), "the shaper's limits are warnings: the times stay")
	require.Empty(t, eval(`performance.getEntriesByType("resource").map((e) => e.name).filter((n) => !n.startsWith(location.origin)).join(" ")`),
		"the page, its player included, loads nothing from anywhere but the edge")
	do("edit the first cue's text, and pull its end in with the keyboard",
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#cues li textarea").value = ""`), chromedp.SendKeys(css(`#cues li textarea`), "Edited in the browser"),
		chromedp.Focus(css(`#cues li textarea`)),
		chromedp.KeyEvent(kb.ArrowLeft, chromedp.KeyModifiers(chromedp.ModifierAlt, chromedp.ModifierShift)),
		chromedp.KeyEvent(kb.ArrowLeft, chromedp.KeyModifiers(chromedp.ModifierAlt, chromedp.ModifierShift)))
	newEnd := eval(`document.querySelector("#cues li input.end").value`)
	require.NotEqual(t, end, newEnd, "Alt+Shift+← moved the end")
	shot("editor")
	// Every save is a revision (GET /v1/jobs/{id}/revisions).
	do("save: revision 1", chromedp.Click(css(`#save`)), chromedp.WaitVisible(css(`#saved`)))
	require.Contains(t, eval(`document.getElementById("saved").textContent`), "revision 1")
	srt := eval(`fetch(document.querySelector('#downloads a[data-format="srt"]').href).then((r) => r.text())`)
	require.Contains(t, srt, "Edited in the browser", "the SRT download has the edit")
	require.Contains(t, srt, srtStamp(newEnd), "and the new end time")

	do("reload: revision 1 is there", chromedp.Reload(), chromedp.WaitVisible(css(`#cues li textarea`)))
	require.Equal(t, "1", eval(`document.getElementById("revision").value`))
	require.Equal(t, "Edited in the browser", eval(`document.querySelector("#cues li textarea").value`))
	do("the original is revision 0", chromedp.Evaluate[chromedp.Void](`(() => { const r = document.getElementById("revision"); r.value = "0"; r.dispatchEvent(new Event("change")); })()`))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#cues li textarea").value !== "Edited in the browser"`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "revision 0 loads")
	require.Equal(t, original, eval(`document.querySelector("#cues li textarea").value`))

	// Someone saves from another tab (here: the API with alice's key);
	// this page's save, from the older base, is told so.
	code, b := client{t: t, base: s.EdgeURL, key: aliceKey}.do("PUT", "/v1/jobs/"+id+"/transcript",
		map[string]any{"base_revision": 1, "segments": []map[string]any{{"start": 0, "end": 2, "text": "Saved from another tab", "speaker": "Speaker 1"}}})
	require.Equal(t, http.StatusOK, code, string(b))
	do("a save from a stale revision is refused, clearly", chromedp.Click(css(`#save`)), chromedp.WaitVisible(css(`#conflict`)))
	do("and the latest can be loaded", chromedp.Click(css(`#load-latest`)),
		chromedp.WaitVisible(css(`#editor-msg .notice.info`)))
	require.Equal(t, "Saved from another tab", eval(`document.querySelector("#cues li textarea").value`))

	// That tab labelled a speaker; this one names them.
	do("rename a speaker and save: revision 3", chromedp.WaitVisible(css(`#speaker-0`)), chromedp.SendKeys(css(`#speaker-0`), "Alice"),
		chromedp.Click(css(`#save`)))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`((document.getElementById("saved") || {}).textContent || "").includes("revision 3")`, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "saved as revision 3")
	require.Contains(t, eval(`document.querySelector("#cues li .badge").textContent`), "Alice")
	srt = eval(`fetch(document.querySelector('#downloads a[data-format="srt"]').href).then((r) => r.text())`)
	require.Contains(t, srt, "Alice", "the SRT names the speaker")

	// Share links.
	do("make a share link", chromedp.Click(css(`#share-create`)), chromedp.WaitVisible(css(`#share-url`)))
	link := eval(`document.getElementById("share-url").value`)
	do("the shared page plays and lists the captions without signing in",
		chromedp.Navigate(link), chromedp.WaitVisible(css(`#cues li`)))
	// A link that pins no revision shows the latest: the other tab's save.
	require.Contains(t, eval(`document.getElementById("cues").textContent`), "Saved from another tab")
	browsertest.Audit(t, ctx, "shared")
	shot("shared")
	do("revoke it", chromedp.Navigate(app+"/jobs/"+id+"/edit"), chromedp.WaitVisible(css(`#shares .revoke`)),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`), chromedp.Click(css(`#shares .revoke`)),
		chromedp.WaitNotPresent(css(`#shares .revoke`)))
	do("the link no longer works", chromedp.Navigate(link), chromedp.WaitVisible(css(`#share-gone`)))

	do("a file dropped on the page is uploaded (tus) and transcribed", chromedp.Navigate(app+"/new"), chromedp.WaitVisible(css(`#file`)),
		chromedp.SetUploadFiles(css(`#file`), []string{file}), chromedp.Click(css(`#start-file`)), chromedp.WaitVisible(css(`#stage`)))
	uploaded := strings.TrimPrefix(eval(`location.pathname`), "/jobs/")
	require.NotEqual(t, id, uploaded)
	do("and finishes", chromedp.WaitVisible(css(`#open-editor`)))
	require.Contains(t, eval(`document.querySelector("h1").textContent`), filepath.Base(file), "the job is named after the file")

	do("my jobs lists it", chromedp.Navigate(app+"/jobs"), chromedp.WaitVisible(css(`tr[data-job="`+id+`"][data-status="succeeded"]`)))
	browsertest.Audit(t, ctx, "my jobs")
	shot("jobs")
	rows := func() string {
		return eval(`[...document.querySelectorAll("#jobs tbody tr")].map((r) => r.dataset.job).join(",")`)
	}
	require.ElementsMatch(t, []string{id, uploaded}, strings.Split(rows(), ","))
	do("search by id", chromedp.SendKeys(css(`#search`), id[:8]))
	require.Equal(t, id, rows())
	do("filter by state", chromedp.Evaluate[chromedp.Void](`document.getElementById("search").value = ""`),
		chromedp.SetValue(css(`#state`), "failed"), chromedp.Evaluate[chromedp.Void](`document.getElementById("state").dispatchEvent(new Event("change"))`))
	require.Equal(t, "", rows(), "neither job failed")
	do("delete the uploaded job for good, once asked", chromedp.SetValue(css(`#state`), ""), chromedp.Evaluate[chromedp.Void](`document.getElementById("state").dispatchEvent(new Event("change"))`),
		chromedp.Evaluate[chromedp.Void](`window.confirm = (q) => (window.asked = q, true)`), chromedp.Click(css(`tr[data-job="`+uploaded+`"] button.danger`)), chromedp.WaitNotPresent(css(`tr[data-job="`+uploaded+`"]`)))
	code, _ = client{t: t, base: s.EdgeURL, key: aliceKey}.do("GET", "/v1/jobs/"+uploaded, nil)
	require.Equal(t, http.StatusNotFound, code, "deleted means gone")
	require.Contains(t, eval(`window.asked`), "cannot be undone")

	do("a link that leads nowhere fails, explained in plain words", chromedp.Navigate(app+"/new"), chromedp.WaitVisible(css(`#url`)),
		chromedp.SendKeys(css(`#url`), strings.TrimSuffix(media, filepath.Base(media))+"missing.wav"), chromedp.Click(css(`#start-url`)),
		chromedp.WaitVisible(css(`#outcome .notice.error`)))
	failure := eval(`document.getElementById("outcome").textContent`)
	require.Contains(t, failure, "leads nowhere")
	require.Contains(t, failure, "code: source_not_found")
	do("a job can be cancelled while it works, once asked", chromedp.Navigate(app+"/new"), chromedp.WaitVisible(css(`#url`)),
		chromedp.SendKeys(css(`#url`), hangingServer(t)+"/talk.ogg"), chromedp.Click(css(`#start-url`)), chromedp.WaitVisible(css(`#cancel`)),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`), chromedp.Click(css(`#cancel`)),
		chromedp.WaitVisible(css(`#outcome .notice.info`)))
	require.Contains(t, eval(`document.getElementById("outcome").textContent`), "cancelled")

	do("sign out", chromedp.Click(css(`#signout`)), chromedp.WaitVisible(css(`#signin`)))
	do("signed out, the job page asks to sign in", chromedp.Navigate(app+"/jobs/"+id), chromedp.WaitVisible(css(`#signin`)))

	do("bob signs in", chromedp.SendKeys(css(`#key`), bobKey), chromedp.Click(css(`#signin button`)), chromedp.WaitVisible(css(`#not-found`)))
	require.Contains(t, eval(`document.getElementById("not-found").textContent`), "not found", "alice's job is not bob's")
	do("nor its editor", chromedp.Navigate(app+"/jobs/"+id+"/edit"), chromedp.WaitVisible(css(`#not-found`)))
	code, _ = client{t: t, base: s.EdgeURL, key: bobKey}.do("GET", "/v1/jobs/"+id, nil)
	require.Equal(t, http.StatusNotFound, code)
}

// jsString quotes s for a script.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// atoi reads a count the page gave.
func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// srtStamp writes seconds ("12.30") as SRT does ("00:00:12,300").
func srtStamp(sec string) string {
	var f float64
	fmt.Sscanf(sec, "%f", &f)
	ms := int64(f*1000 + 0.5)
	return fmt.Sprintf("%02d:%02d:%02d,%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}
