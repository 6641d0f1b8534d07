package core_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
)

// TestReadyReportsTheTools: /health/ready says which yt-dlp core runs, how
// old it is against --yt-dlp-max-age and which JavaScript runtime it found,
// and stays ready with a stale yt-dlp; /metrics carries the release date and
// the maximum age the YtcaptionYtDlpStale alert compares.
func TestReadyReportsTheTools(t *testing.T) {
	dir := t.TempDir()
	script := func(name, out string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o755))
		return p
	}
	cfg := core.Config{DataDir: t.TempDir(), ServiceToken: "svc-token", NodeTokens: []string{"node-token"}, WorkDir: t.TempDir(),
		YtDlpBinary: script("yt-dlp", "2023.03.04"), JSRuntimes: "node:" + filepath.Join(dir, "no-node") + ",deno:" + script("deno", "deno 2.9.6 (stable)"),
		FFmpeg: script("ffmpeg", "ffmpeg version 7.1.1 Copyright"), FFprobe: script("ffprobe", "ffprobe version 7.1.1 Copyright"),
		YtDlpMaxAge: 30 * 24 * time.Hour, Logger: slog.New(slog.DiscardHandler),
		YtDlpProxies: []string{"http://u:secret@proxy-a:3128", "socks5://proxy-b:1080"}}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := core.New(ctx, cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		c.Close()
	})

	resp, err := http.Get("http://" + ln.Addr().String() + "/health/ready")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "a stale yt-dlp does not make core unready")
	var ready struct {
		Status string
		YtDlp  string `json:"yt_dlp"`
		Tools  struct {
			YtDlp struct {
				Version   string
				Released  string
				AgeDays   int `json:"age_days"`
				Stale     bool
				JSRuntime string `json:"js_runtime"`
			} `json:"yt_dlp"`
			FFmpeg, FFprobe string
		}
		Outbound outbound.Summary
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ready))
	require.Equal(t, "ok", ready.Status)
	require.Equal(t, "2023.03.04", ready.YtDlp, "the bare version stays where earlier readers look")
	y := ready.Tools.YtDlp
	require.Equal(t, "2023.03.04", y.Version)
	require.Equal(t, "2023-03-04", y.Released)
	released := time.Date(2023, 3, 4, 0, 0, 0, 0, time.UTC)
	require.InDelta(t, int(time.Since(released)/(24*time.Hour)), y.AgeDays, 1)
	require.True(t, y.Stale)
	require.Equal(t, "deno 2.9.6", y.JSRuntime, "the first configured runtime that works")
	require.Equal(t, "7.1.1", ready.Tools.FFmpeg)
	require.Equal(t, "7.1.1", ready.Tools.FFprobe)
	require.Equal(t, outbound.Summary{Proxies: 2}, ready.Outbound, "the pool's proxies, none resting, no cookie files")

	rec := httptest.NewRecorder()
	c.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	metrics, _ := io.ReadAll(rec.Body)
	require.Contains(t, string(metrics), "\nytcaption_core_ytdlp_release_timestamp_seconds 1.677888e+09\n")
	require.Contains(t, string(metrics), "\nytcaption_core_ytdlp_max_age_seconds 2.592e+06\n")
	require.Contains(t, string(metrics), `ytcaption_core_ytdlp_info{js_runtime="deno 2.9.6",version="2023.03.04"} 1`)
	require.Contains(t, string(metrics), "\nytcaption_core_queue_depth{state=\"ready\"} 0\n")
	require.Contains(t, string(metrics), "\nytcaption_core_gpu_node_slots{state=\"total\"} 0\n", "no gpu-node has polled")
}

// TestReadyWithoutYtDlp: a core whose yt-dlp is missing serves, says so,
// and exports no release date (so the stale alert does not guess).
func TestReadyWithoutYtDlp(t *testing.T) {
	t.Parallel()
	base := startCore(t, nil)
	resp, err := http.Get(base + "/health/ready")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ready map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ready))
	require.Equal(t, "", ready["yt_dlp"])
	y := ready["tools"].(map[string]any)["yt_dlp"].(map[string]any)
	require.Equal(t, map[string]any{"version": "", "released": "", "age_days": float64(0), "stale": false, "js_runtime": y["js_runtime"]}, y)
}
