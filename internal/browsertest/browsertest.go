// Package browsertest drives Debian's headless Chromium for the browser
// tests of the web app (devstack) and the admin dashboard, and holds the one
// accessibility audit both pass on every page.
package browsertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// Start starts headless Chromium (Debian's, which `make deps` installs) for
// the test, and stops it when the test ends.
func Start(t testing.TB) context.Context {
	t.Helper()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("browser tests need Debian's chromium: run `make deps`")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// Steps returns the tests' do: it runs steps in the browser, for at most
// limit, and fails the test with what they were for if they fail.
func Steps(t testing.TB, ctx context.Context, limit time.Duration) func(what string, steps ...chromedp.Action[chromedp.Void]) {
	return runner(t, ctx, limit, chromedp.Do)
}

// Loads is Steps for steps that load a page, a click that submits a form:
// each call waits for the page they load (chromedp.RunResponse) rather than
// leaving the next step to query a page on its way out. A dashboard step that
// clicked and then waited for a selector once hung for its whole minute.
func Loads(t testing.TB, ctx context.Context, limit time.Duration) func(what string, steps ...chromedp.Action[chromedp.Void]) {
	return runner(t, ctx, limit, func(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
		_, err := chromedp.RunResponse(ctx, steps...)
		return err
	})
}

// runner is Steps and Loads: run runs each call's steps, for at most limit.
func runner(t testing.TB, ctx context.Context, limit time.Duration,
	run func(context.Context, ...chromedp.Action[chromedp.Void]) error) func(what string, steps ...chromedp.Action[chromedp.Void]) {
	return func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		require.NoError(t, run(sctx, steps...), what)
	}
}

// auditScript walks every visible, enabled control of the page and returns
// what fails WCAG checks a machine can make: a control without an
// accessible name, and text whose contrast with its background (computed
// styles, WCAG 2.1 relative luminance) is under 4.5:1 (3:1 for large text).
// It tags each control with data-a11y=<n> for the Tab walk, and returns
// their count.
const auditScript = `(() => {
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden" && !el.closest("[hidden]");
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, audio[controls], summary, [tabindex]:not([tabindex="-1"])';
  const controls = [...document.querySelectorAll(sel)].filter((el) => visible(el) && !el.disabled);
  const problems = [];
  const name = (el) => {
    if (el.getAttribute("aria-label")) return el.getAttribute("aria-label");
    if (el.getAttribute("aria-labelledby")) return el.getAttribute("aria-labelledby").split(" ").map((id) => (document.getElementById(id) || {}).textContent || "").join(" ");
    if (el.labels && el.labels.length) return [...el.labels].map((l) => l.textContent).join(" ");
    if (["A", "BUTTON", "SUMMARY"].includes(el.tagName)) return el.textContent;
    return el.title || "";
  };
  controls.forEach((el, i) => {
    el.dataset.a11y = String(i);
    if (!name(el).trim()) problems.push("no accessible name: " + el.outerHTML.slice(0, 120));
  });
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || !visible(el) || el.closest("button:disabled, .skip-link, audio, option")) continue;
    const cs = getComputedStyle(el);
    const fg = rgb(cs.color).slice(0, 3), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked++;
    if (ratio < need) problems.push("contrast " + ratio.toFixed(2) + ":1 for “" + n.textContent.trim().slice(0, 40) + "”");
  }
  if (!checked) problems.push("no text found to check");
  const overflow = document.documentElement.scrollWidth > window.innerWidth + 1;
  if (overflow) problems.push("the page is wider than the screen: " + document.documentElement.scrollWidth + " px");
  return { controls: controls.length, problems };
})()`

type a11yResult struct {
	Controls int
	Problems []string
}

// Audit runs auditScript on the page, then presses Tab from the top until
// every control has had the focus (a keyboard user can reach each).
func Audit(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	r, err := chromedp.Run(ctx, chromedp.Evaluate[a11yResult](auditScript))
	require.NoError(t, err, page)
	require.Empty(t, r.Problems, "%s: accessibility", page)
	require.Positive(t, r.Controls, page)
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); document.body.focus()`)))
	reached := map[string]bool{}
	// Native media controls take several presses each; the bound is generous.
	for i := 0; i < 4*r.Controls+10 && len(reached) < r.Controls; i++ {
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.activeElement && document.activeElement.dataset.a11y) || ""`))
		require.NoError(t, err)
		if id != "" {
			reached[id] = true
		}
	}
	require.Len(t, reached, r.Controls, "%s: every control reachable with Tab", page)
}
