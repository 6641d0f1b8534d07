package devstack

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPlansSetTheEdgesLimits: a user's plan, set in core's database, is what
// the edge enforces for that user's key; users whose plan pins nothing get
// the deployment's defaults (core's flags).
func TestPlansSetTheEdgesLimits(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.CreateRate = 5 })
	admin := client{t: t, base: s.EdgeURL, key: s.APIKey}
	code, b := admin.do("PUT", "/v1/admin/plans/tiny", map[string]int{"create_rate": 1, "create_burst": 2})
	require.Equal(t, http.StatusOK, code, string(b))
	tinyKey, _ := newUserOn(t, admin, "tiny-user", "tiny")

	do := func(method, key string) *http.Response {
		var body *strings.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"url":"http://127.0.0.1:9/clip.ogg"}`)
		} else {
			body = strings.NewReader("")
		}
		req, err := http.NewRequest(method, s.EdgeURL+"/v1/jobs", body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}

	// The plan pins creations; reads fall back to the deployment's default.
	for range 2 {
		r := do(http.MethodPost, tinyKey)
		require.Equal(t, http.StatusAccepted, r.StatusCode)
		require.Equal(t, `"create";q=2;w=2`, r.Header.Get("RateLimit-Policy"))
	}
	require.Equal(t, http.StatusTooManyRequests, do(http.MethodPost, tinyKey).StatusCode, "the plan's burst of 2 is spent")
	require.Equal(t, `"read";q=200;w=2`, do(http.MethodGet, tinyKey).Header.Get("RateLimit-Policy"))

	// The dev user is on the default plan: the flags' limits.
	r := do(http.MethodPost, s.APIKey)
	require.Equal(t, http.StatusAccepted, r.StatusCode)
	require.Equal(t, `"create";q=5;w=1`, r.Header.Get("RateLimit-Policy"))
}
