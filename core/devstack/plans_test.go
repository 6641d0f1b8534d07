package devstack

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestPlansSetTheEdgesLimits: a user's plan, set in core's database, is what
// the edge enforces for that user's key; users whose plan pins nothing get
// the deployment's defaults (core's flags).
func TestPlansSetTheEdgesLimits(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.CreateRate = 5 })
	ctx := context.Background()
	pool, err := core.Connect(ctx, s.DBURL)
	require.NoError(t, err)
	defer pool.Close()
	st := store.New(sqldb.FromPool(pool))
	require.NoError(t, st.SetPlan(ctx, store.Plan{Name: "tiny", CreateRate: 1, CreateBurst: 2}))
	u, err := st.CreateUser(ctx, "tiny-user", store.RoleUser, "tiny")
	require.NoError(t, err)
	tinyKey, err := st.CreateAPIKey(ctx, u.ID)
	require.NoError(t, err)

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
