package devstack

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMetricsAreOnTheirOwnListener: core's and the edge's metrics are on
// the dev metrics listener, and none of the API ports serves /metrics.
func TestMetricsAreOnTheirOwnListener(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(s.CoreMetricsURL)
	require.Equal(t, http.StatusOK, code)
	require.Regexp(t, `(?m)^ytcaption_core_queue_depth\{state="queued"\} \d+$`, body)
	code, body = get(s.EdgeMetricsURL)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "ytcaption_edge_")
	for _, base := range []string{s.CoreURL, s.EdgeURL, s.ConnectURL} {
		code, body = get(base + "/metrics")
		require.NotEqual(t, http.StatusOK, code, "%s/metrics: %s", base, body)
		require.NotContains(t, body, "ytcaption_", base)
	}
}
