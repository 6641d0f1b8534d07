package edge

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/redistest"
)

const createBody = `{"url":"https://example.com/talk.mp3"}`

var rateLimitHeader = regexp.MustCompile(`^"(create|read)";r=(\d+);t=(\d+)$`)

// TestRateLimitsPerKeyWithHeaders runs against a real Redis: core's plan for
// carol allows 2 job creations at once and 1/s after, and 3 reads at once.
func TestRateLimitsPerKeyWithHeaders(t *testing.T) {
	t.Parallel()
	h := startWith(t, redistest.Start(t).URL())

	for i, remaining := range []string{"1", "0"} {
		resp, body := h.do("POST", "/v1/jobs", "key-carol", createBody)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "creation %d: %s", i+1, body)
		require.Equal(t, `"create";q=2;w=2`, resp.Header.Get("RateLimit-Policy"))
		m := rateLimitHeader.FindStringSubmatch(resp.Header.Get("RateLimit"))
		require.NotNil(t, m, resp.Header.Get("RateLimit"))
		require.Equal(t, remaining, m[2])
	}
	resp, body := h.do("POST", "/v1/jobs", "key-carol", createBody)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "rate_limited", errCode(t, body))
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After is whole seconds")
	require.Equal(t, 1, retry, "one creation per second: retry in 1 s")
	require.Regexp(t, `^"create";r=0;t=\d+$`, resp.Header.Get("RateLimit"))
	h.core.mu.Lock()
	require.Len(t, h.core.jobs, 2, "a refused request never reaches core")
	h.core.mu.Unlock()

	// Reads have their own budget, and so does every other key.
	resp, _ = h.do("GET", "/v1/jobs", "key-carol", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, `"read";q=3;w=3`, resp.Header.Get("RateLimit-Policy"))
	resp, _ = h.do("POST", "/v1/jobs", "key-carol-2", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "limits are per API key")
	for range 2 {
		h.do("GET", "/v1/jobs/x", "key-carol", "")
	}
	resp, _ = h.do("GET", "/v1/jobs", "key-carol", "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the read burst is spent")
}

// TestRedisOutageNeverFailsARequest stops Redis mid-test: requests are still
// served and limited, by the edge's own limiter, and the fallback is counted.
func TestRedisOutageNeverFailsARequest(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	h := startWith(t, r.URL())
	resp, _ := h.do("POST", "/v1/jobs", "key-carol", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, _ = h.do("GET", "/v1/jobs", "key-alice", "") // cached: no per-address decision during the outage
	require.Equal(t, http.StatusOK, resp.StatusCode)

	r.Stop()
	resp, body := h.do("POST", "/v1/jobs", "key-carol", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "Redis down: the request is still served: %s", body)
	resp, _ = h.do("GET", "/v1/jobs", "key-carol", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("RateLimit"), "still described")
	// Alice's large read burst is drawn on a few requests at a time
	// (ratelimit.Limit.draw): what the edge drew before the outage lets
	// her read on with no decision to make without Redis.
	resp, _ = h.do("GET", "/v1/jobs", "key-alice", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = h.do("POST", "/v1/jobs", "key-carol", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "the local bucket starts full")
	resp, _ = h.do("POST", "/v1/jobs", "key-carol", createBody)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "and still limits")

	m := regexp.MustCompile(`(?m)^ytcaption_edge_ratelimit_fallback_total (\d+)$`).FindStringSubmatch(h.metrics())
	require.NotNil(t, m, "the fallback counter is exported")
	n, _ := strconv.Atoi(m[1])
	require.Equal(t, 4, n, "every decision made without Redis is counted")
}
