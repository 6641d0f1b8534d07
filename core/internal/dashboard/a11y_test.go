package dashboard

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/browsertest"
)

// screenshotsEnv names a directory: when set, the browser test saves each
// page at desktop and phone size there (make screenshots writes
// docs/screenshots/admin-*.png with it).
const screenshotsEnv = "YTCAPTION_SCREENSHOTS"

// TestEveryPageFitsAPhoneAndWorksByKeyboard visits each page of the
// dashboard in headless Chromium: at 390 px wide nothing makes the page
// scroll sideways (tables scroll in their own box or wrap); Tab reaches
// every control, and each has an accessible name; text contrast is at least
// 4.5:1 (3:1 for large text). With YTCAPTION_SCREENSHOTS set it saves each page at 1280×800 and
// 390×844.
func TestEveryPageFitsAPhoneAndWorksByKeyboard(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	site.dash.stayStill = true // the walk takes longer than a refresh interval
	s := seed(t, site.store)
	shots := os.Getenv(screenshotsEnv)
	if shots != "" {
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}

	ctx := browsertest.Start(t)
	type css = chromedp.CSS
	do := browsertest.Steps(t, ctx, 60*time.Second)
	eval := func(js string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		require.NoError(t, err)
		return n
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start the browser")

	check := func(name, path string) {
		t.Helper()
		for _, size := range []struct {
			label string
			w, h  int64
		}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
			do(name+" at "+size.label, chromedp.EmulateViewport(size.w, size.h), chromedp.Navigate(site.URL+path), chromedp.WaitReady(css(`main`)))
			require.LessOrEqual(t, eval(`document.documentElement.scrollWidth`), eval(`window.innerWidth`),
				"%s at %d px scrolls sideways", name, size.w)
			if shots != "" {
				png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(shots, "admin-"+name+"-"+size.label+".png"), png, 0o644))
			}
		}
		// At phone width: every control has a name and Tab reaches it,
		// and text is legible (browsertest.Audit).
		browsertest.Audit(t, ctx, name)
	}

	check("login", "/admin/login")
	do("sign in", chromedp.SendKeys(css(`#key`), site.key), chromedp.Submit(css(`#login`)), chromedp.WaitVisible(css(`#count-queued`)))
	for _, p := range []struct{ name, path string }{
		{"overview", "/admin/"}, {"jobs", "/admin/jobs"}, {"job", "/admin/jobs/" + s.done.ID}, {"job-failed", "/admin/jobs/" + s.notMedia.ID},
		{"batches", "/admin/batches"}, {"fleet", "/admin/fleet"}, {"users", "/admin/users"}, {"plans", "/admin/plans"},
		{"audit", "/admin/audit"}, {"cookies", "/admin/cookies"},
	} {
		check(p.name, p.path)
	}
}
