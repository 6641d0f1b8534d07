package edge

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRequestIDIsEchoedPassedOnOrGenerated(t *testing.T) {
	t.Parallel()
	h := start(t)
	resp, _ := h.doWith("GET", "/v1/jobs", "key-alice", "", map[string]string{"X-Request-Id": "trace-42.a:b"})
	require.Equal(t, "trace-42.a:b", resp.Header.Get("X-Request-Id"))
	h.core.mu.Lock()
	require.Equal(t, "trace-42.a:b", h.core.lastRequestID, "core sees the same id")
	h.core.mu.Unlock()

	resp, _ = h.do("GET", "/v1/jobs", "key-alice", "")
	generated := resp.Header.Get("X-Request-Id")
	require.Len(t, generated, 26, "a fresh random id")
	resp, _ = h.do("GET", "/v1/jobs", "key-alice", "")
	require.NotEqual(t, generated, resp.Header.Get("X-Request-Id"))

	resp, _ = h.doWith("GET", "/v1/jobs", "key-alice", "", map[string]string{"X-Request-Id": "no spaces <or> quotes\" please"})
	require.NotContains(t, resp.Header.Get("X-Request-Id"), " ", "an unsafe id is replaced")
}

func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	t.Parallel()
	h := startConfigured(t, func(c *Config) { c.CORSOrigins = []string{"https://app.example"} })
	pre := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization,idempotency-key"}
	resp, _ := h.doWith("OPTIONS", "/v1/jobs", "", "", pre)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "a preflight needs no API key")
	require.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "idempotency-key")

	resp, _ = h.doWith("GET", "/v1/jobs", "key-alice", "", map[string]string{"Origin": "https://app.example"})
	require.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "RateLimit")

	resp, _ = h.doWith("GET", "/v1/jobs", "key-alice", "", map[string]string{"Origin": "https://evil.example"})
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	plain := start(t)
	resp, _ = plain.doWith("GET", "/v1/jobs", "key-alice", "", map[string]string{"Origin": "https://app.example"})
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "no origins configured: no CORS")
}

// syncBuffer is a log sink the server goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestAccessLogOneStructuredLinePerRequest(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	h := startConfigured(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	h.doWith("GET", "/v1/jobs/00000000-0000-4000-8000-000000000099", "key-alice", "", map[string]string{"X-Request-Id": "log-me"})
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["request_id"] == "log-me" {
			line = m
		}
	}
	require.NotNil(t, line, "an access-log line for the request:\n%s", logs.String())
	require.Equal(t, "/v1/jobs/:id", line["route"], "the route pattern, never the raw path")
	require.Equal(t, float64(http.StatusNotFound), line["status"])
	require.Equal(t, "GET", line["method"])
	require.Equal(t, "11111111-1111-1111-1111-111111111111", line["user_id"])
	require.Contains(t, line, "duration_ms")
}
