package webui

import (
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTokenContrast holds every text/background pair the stylesheet uses to
// WCAG 2.1 AA: 4.5:1 for text.
func TestTokenContrast(t *testing.T) {
	t.Parallel()
	css, err := fs.ReadFile(Files, "webui.css")
	require.NoError(t, err)
	tokens := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})`).FindAllStringSubmatch(string(css), -1) {
		tokens[m[1]] = m[2]
	}
	pairs := [][2]string{
		{"text", "bg"}, {"text", "surface"}, {"text", "surface-2"},
		{"muted", "bg"}, {"muted", "surface"}, {"muted", "surface-2"},
		{"accent", "bg"}, {"accent", "surface"}, {"accent", "accent-soft"}, {"on-accent", "accent"},
		{"danger", "surface"}, {"danger", "danger-soft"}, {"ok", "surface"}, {"ok", "ok-soft"},
		{"warn", "surface"}, {"warn", "warn-soft"}, {"text", "accent-soft"}, {"bar-text", "bar-bg"},
	}
	for _, p := range pairs {
		fg, bg := tokens[p[0]], tokens[p[1]]
		require.NotEmpty(t, fg, p[0])
		require.NotEmpty(t, bg, p[1])
		r := contrast(fg, bg)
		require.GreaterOrEqual(t, r, 4.5, "--%s on --%s is %.2f:1", p[0], p[1], r)
	}
}

func contrast(a, b string) float64 {
	lum := func(hex string) float64 {
		var c [3]float64
		for i := range c {
			v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
			x := float64(v) / 255
			if x <= 0.03928 {
				c[i] = x / 12.92
			} else {
				c[i] = math.Pow((x+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
	}
	hi, lo := lum(a), lum(b)
	if lo > hi {
		hi, lo = lo, hi
	}
	return (hi + 0.05) / (lo + 0.05)
}

func TestHandlerServesTheSharedFiles(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.StripPrefix("/ui/", Handler()))
	defer srv.Close()
	for file, ctype := range map[string]string{"webui.css": "text/css", "webui.js": "text/javascript"} {
		resp, err := http.Get(srv.URL + "/ui/" + file)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, file)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), ctype), resp.Header.Get("Content-Type"))
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	}
}

func TestPageHeadersForbidInlineScriptAndFraming(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	SetPageHeaders(h)
	csp := h.Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'self'")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.NotContains(t, csp, "unsafe-inline")
	require.Equal(t, "DENY", h.Get("X-Frame-Options"))
}
