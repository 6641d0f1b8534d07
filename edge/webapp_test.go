package edge

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge/internal/webapp"
	"github.com/ytcaption/ytcaption/internal/redistest"
)

// signIn posts key to the web app's sign-in and returns the reply and the
// session cookie it set ("" if none).
func (h harness) signIn(key string, header map[string]string) (*http.Response, []byte, string) {
	h.t.Helper()
	hdr := map[string]string{"Content-Type": "application/json"}
	for k, v := range header {
		hdr[k] = v
	}
	resp, b := h.doWith("POST", "/app-session", "", `{"key":"`+key+`"}`, hdr)
	for _, c := range resp.Cookies() {
		if c.Name == webapp.CookieName && c.Value != "" {
			return resp, b, c.Value
		}
	}
	return resp, b, ""
}

// asSession sends a request with the session cookie (and csrf, if set, as
// X-CSRF-Token) instead of an API key.
func (h harness) asSession(method, path, cookie, csrf, body string, header map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	hdr := map[string]string{"Cookie": webapp.CookieName + "=" + cookie}
	if csrf != "" {
		hdr["X-CSRF-Token"] = csrf
	}
	for k, v := range header {
		hdr[k] = v
	}
	return h.doWith(method, path, "", body, hdr)
}

var csrfField = regexp.MustCompile(`"csrf":"([^"]+)"`)

// TestWebAppSessionStandsInForTheKey walks a session's life and the attacks
// on it: the cookie scripts cannot read, CSRF missing or wrong (403), the
// cookie ignored beside an Authorization header, sign-out ending it on the
// server, a forged cookie — in memory and in Redis.
func TestWebAppSessionStandsInForTheKey(t *testing.T) {
	t.Parallel()
	for name, redisURL := range map[string]string{"memory": "", "redis": redistest.Start(t).URL()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := startWith(t, redisURL)
			resp, b, cookie := h.signIn("key-alice", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			require.NotEmpty(t, cookie)
			raw := resp.Header.Get("Set-Cookie")
			require.Contains(t, raw, "HttpOnly", "scripts cannot read the session")
			require.Contains(t, strings.ToLower(raw), "samesite=strict")
			require.NotContains(t, raw, "key-alice", "the cookie names a session; the key stays on the server")
			require.NotContains(t, raw, "Secure", "plain HTTP here: a Secure cookie would never come back")
			csrf := csrfField.FindStringSubmatch(string(b))[1]

			resp, b = h.asSession("GET", "/app-session", cookie, "", "", nil)
			require.Equal(t, `{"signed_in":true,"csrf":"`+csrf+`"}`, string(b))
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

			resp, b = h.asSession("GET", "/v1/jobs", cookie, "", "", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "one person's data")

			job := `{"url":"https://example.com/a.mp3"}`
			resp, b = h.asSession("POST", "/v1/jobs", cookie, "", job, map[string]string{"Content-Type": "application/json"})
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token")
			require.Equal(t, "forbidden", errCode(t, b))
			resp, _ = h.asSession("POST", "/v1/jobs", cookie, csrf[:len(csrf)-1]+"x", job, map[string]string{"Content-Type": "application/json"})
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "a wrong CSRF token")
			resp, _ = h.asSession("DELETE", "/app-session", cookie, "", "", nil)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, "signing out needs the token too")
			resp, b = h.asSession("POST", "/v1/jobs", cookie, csrf, job, map[string]string{"Content-Type": "application/json"})
			require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
			id := regexp.MustCompile(`"id":"([^"]+)"`).FindStringSubmatch(string(b))[1]

			resp, _ = h.asSession("GET", "/v1/jobs/"+id, cookie, "", "", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "alice's session sees alice's job")
			resp, _ = h.asSession("GET", "/v1/jobs/"+id, cookie, "", "", map[string]string{"Authorization": "Bearer key-bob"})
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "beside an Authorization header the cookie counts for nothing")
			resp, _ = h.asSession("GET", "/v1/jobs/"+id, cookie, "", "", map[string]string{"Authorization": "Bearer nope"})
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a bad header is not rescued by the cookie")

			forged := strings.Repeat("A", len(cookie))
			resp, b = h.asSession("GET", "/v1/jobs", forged, "", "", nil)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a forged session")
			require.Equal(t, "unauthorized", errCode(t, b))
			_, b = h.asSession("GET", "/app-session", forged, "", "", nil)
			require.Equal(t, `{"signed_in":false}`, string(b), "the page shows the sign-in")

			resp, _ = h.asSession("DELETE", "/app-session", cookie, csrf, "", nil)
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			require.Contains(t, resp.Header.Get("Set-Cookie"), webapp.CookieName+"=;", "the browser's copy is cleared")
			resp, _ = h.asSession("GET", "/v1/jobs", cookie, "", "", nil)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a signed-out cookie is worthless even if a copy survives")
		})
	}
}

// TestWebAppSignInIsLimitedAndSameSiteOnly: guessing keys through the sign-in
// hits the same per-address budget as guessing them on the API; a form or
// another site's page cannot sign anyone in.
func TestWebAppSignInIsLimitedAndSameSiteOnly(t *testing.T) {
	t.Parallel()
	h := startConfigured(t, func(c *Config) { c.FailedAuthBurst, c.FailedAuthPerMinute = 3, 1 })
	resp, b := h.doWith("POST", "/app-session", "", "key=key-alice", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a form post (another site can send one) is refused")
	require.Empty(t, resp.Cookies(), string(b))
	resp, _, cookie := h.signIn("key-alice", map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Empty(t, cookie)

	for i := range 3 {
		resp, b, _ := h.signIn("guess-"+string(rune('a'+i)), nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(b))
	}
	resp, b, cookie = h.signIn("guess-d", nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(b))
	require.Equal(t, "rate_limited", errCode(t, b))
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Empty(t, cookie)
}

// TestWebAppPagesAreLockedDown: every page of the app sends a CSP allowing
// only this origin and no inline script, refuses framing and caching; the
// page itself has no inline script, and the app's scripts build the page
// without innerHTML, so text from the API is never markup.
func TestWebAppPagesAreLockedDown(t *testing.T) {
	t.Parallel()
	h := start(t)
	for _, p := range []string{"/", "/new", "/jobs", "/jobs/some-id", "/jobs/some-id/edit", "/signin", "/s/some-token"} {
		resp, b := h.do("GET", p, "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'self'", p)
		require.Contains(t, csp, "frame-ancestors 'none'", p)
		require.NotContains(t, csp, "unsafe-inline", p)
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), p)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), p)
		require.Contains(t, string(b), `name="viewport"`, p)
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(b), -1) {
			require.Contains(t, tag, `src="/`, "no inline script: %s", tag)
		}
		require.NotRegexp(t, `(?i)(src|href)="(https?:)?//`, string(b), "nothing from another site")
	}
	for _, f := range []string{"/app/app.js", "/app/app.css", "/ui/webui.css", "/ui/webui.js"} {
		resp, _ := h.do("GET", f, "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, f)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), f)
	}
	resp, _ := h.do("GET", "/app/../edge.go", "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.NoError(t, fs.WalkDir(webapp.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		src, err := fs.ReadFile(webapp.Files, p)
		require.NoError(t, err)
		require.NotRegexp(t, `innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`, string(src), p)
		require.NotRegexp(t, `https?://`, string(src), "%s loads nothing from elsewhere", p)
		return nil
	}))
}
