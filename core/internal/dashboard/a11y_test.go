package dashboard

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// screenshotsEnv names a directory: when set, the browser test saves each
// page at desktop and phone size there (make screenshots writes
// docs/screenshots/admin-*.png with it).
const screenshotsEnv = "YTCAPTION_SCREENSHOTS"

// controlsJS marks every control a keyboard user must reach and returns,
// for each, its accessible name ("" when it has none) — the name as a
// screen reader computes it, closely enough: aria-label, aria-labelledby,
// the control's label, its text, its value or title.
const controlsJS = `(() => {
  const sel = 'a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
  const out = [];
  document.querySelectorAll(sel).forEach((e, i) => {
    const st = getComputedStyle(e);
    if (e.hidden || st.display === 'none' || st.visibility === 'hidden') return;
    e.dataset.ctl = i;
    let name = e.getAttribute('aria-label') || '';
    if (!name && e.getAttribute('aria-labelledby')) name = e.getAttribute('aria-labelledby').split(' ').map(id => (document.getElementById(id) || {}).textContent || '').join(' ');
    if (!name && e.labels && e.labels.length) name = Array.from(e.labels).map(l => l.textContent).join(' ');
    if (!name) name = e.textContent || '';
    if (!name && e.type === 'submit') name = e.value || 'Submit';
    if (!name) name = e.getAttribute('title') || '';
    out.push({id: String(i), tag: e.tagName.toLowerCase(), name: name.trim(), html: e.outerHTML.slice(0, 120)});
  });
  return out;
})()`

// contrastJS returns the text whose contrast with its background is under
// 4.5:1 (WCAG 2.1 AA for normal text), measured from computed styles: the
// background is the nearest ancestor's that is not transparent.
const contrastJS = `(() => {
  const rgb = s => { const m = s.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const e = n.parentElement;
    if (!n.textContent.trim() || !e || !e.getClientRects().length) continue;
    if (e.closest('.visually-hidden, .skip-link, script, style, [hidden]')) continue;
    const st = getComputedStyle(e);
    if (st.visibility === 'hidden') continue;
    const fg = rgb(st.color), b = bg(e);
    const l1 = lum(fg), l2 = lum(b);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < 4.5) bad.push(ratio.toFixed(2) + ': ' + n.textContent.trim().slice(0, 40) + ' (' + st.color + ' on ' + getComputedStyle(e).backgroundColor + ')');
  }
  return bad;
})()`

type control struct {
	ID, Tag, Name, HTML string
}

// TestEveryPageFitsAPhoneAndWorksByKeyboard visits each page of the
// dashboard in headless Chromium: at 390 px wide nothing makes the page
// scroll sideways (tables scroll in their own box or wrap); Tab reaches
// every control, and each has an accessible name; text contrast is at least
// 4.5:1. With YTCAPTION_SCREENSHOTS set it saves each page at 1280×800 and
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

	ctx := browser(t)
	type css = chromedp.CSS
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(sctx, steps...), what)
	}
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
		// At phone width: every control has a name and Tab reaches it.
		controls, err := chromedp.Run(ctx, chromedp.Evaluate[[]control](controlsJS))
		require.NoError(t, err)
		want := map[string]control{}
		for _, c := range controls {
			require.NotEmpty(t, c.Name, "%s: a control without an accessible name: %s", name, c.HTML)
			want[c.ID] = c
		}
		// Start at the skip link, the page's first control: focus inside the
		// page also holds its self-refresh back.
		first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const a = document.querySelector('a.skip-link'); a.focus(); return a.dataset.ctl; })()`))
		require.NoError(t, err)
		reached := map[string]bool{first: true}
		for range len(controls) + 3 {
			do("press Tab", chromedp.KeyEvent("\t"))
			id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.activeElement && document.activeElement.dataset.ctl) || ""`))
			require.NoError(t, err)
			reached[id] = true
		}
		for id, c := range want {
			require.True(t, reached[id], "%s: Tab never reaches %s", name, c.HTML)
		}
		bad, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](contrastJS))
		require.NoError(t, err)
		require.Empty(t, bad, "%s: text under 4.5:1", name)
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
