package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
)

// now is the tests' clock: 2026-12-02.
var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// fake writes an executable script printing out and returns its path. The
// tests write all of them before any runs in parallel: a script written
// while another test forks can fail to start ("text file busy").
func fake(t *testing.T, dir, name, out string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\nprintf '%s\\n' '"+out+"'\n"), 0o755))
	return path
}

func find(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

// TestChecksAgainstFakeTools: each verdict follows from what the programs
// print — a current yt-dlp with Deno 2 is fine, an old one is stale and
// cannot use a runtime, a current one without a working runtime fails
// YouTube, Node 18 is too old.
func TestChecksAgainstFakeTools(t *testing.T) {
	dir := t.TempDir()
	current := fake(t, dir, "yt-dlp-current", "2026.11.20")
	old := fake(t, dir, "yt-dlp-old", "2023.03.04")
	git := fake(t, dir, "yt-dlp-git", "master@abc123")
	deno := fake(t, dir, "deno", "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)")
	deno1 := fake(t, dir, "deno1", "deno 1.46.3 (stable, release, x86_64-unknown-linux-gnu)")
	node18 := fake(t, dir, "node18", "v18.19.0")
	node20 := fake(t, dir, "node20", "v20.20.2")
	ffmpeg := fake(t, dir, "ffmpeg", "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers")
	ffprobe := fake(t, dir, "ffprobe", "ffprobe version 5.1.9-0+deb12u1 Copyright (c) 2007-2026 the FFmpeg developers")
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name        string
		cfg         Config
		want        map[string]Status
		runtime     string
		contains    []string
		stale, fail bool
	}{
		{"current yt-dlp with deno", Config{YtDlp: current, JSRuntimes: "deno:" + deno},
			map[string]Status{"yt-dlp": OK, "yt-dlp js": OK, "js runtime": OK, "ffmpeg": OK, "ffprobe": OK, "cookies": OK, "proxy": OK},
			"deno 2.9.6", []string{"2026.11.20, released 2026-11-20, 12 days ago (at most 60)", "bundle"}, false, false},
		{"old yt-dlp is stale and predates runtimes", Config{YtDlp: old, JSRuntimes: "deno:" + deno},
			map[string]Status{"yt-dlp": Warn, "yt-dlp js": Warn, "js runtime": OK},
			"deno 2.9.6", []string{"released 2023-03-04, 1369 days ago (more than 60)", "tools fetch"}, true, false},
		{"max age is the operator's", Config{YtDlp: old, JSRuntimes: "deno:" + deno, MaxAge: 2000 * 24 * time.Hour},
			map[string]Status{"yt-dlp": OK}, "deno 2.9.6", []string{"(at most 2000)"}, false, false},
		{"current yt-dlp without a runtime fails", Config{YtDlp: current, JSRuntimes: "deno:" + missing + ",node:" + node18},
			map[string]Status{"js runtime": Fail}, "", []string{"node 18.19.0 is older than yt-dlp accepts (20 or later)", missing}, false, true},
		{"old yt-dlp without a runtime warns", Config{YtDlp: old, JSRuntimes: "deno:" + deno1},
			map[string]Status{"js runtime": Warn}, "", []string{"deno 1.46.3 is older than yt-dlp accepts (2 or later)"}, true, false},
		{"the first runtime that works, in order", Config{YtDlp: current, JSRuntimes: "deno:" + deno1 + ", node:" + node20 + ",deno:" + deno},
			map[string]Status{"js runtime": OK}, "node 20.20.2", []string{"skipped: deno 1.46.3"}, false, false},
		{"unknown runtime", Config{YtDlp: current, JSRuntimes: "rhino"},
			map[string]Status{"js runtime": Fail}, "", []string{"rhino: not a runtime yt-dlp knows"}, false, true},
		{"yt-dlp missing", Config{YtDlp: missing, JSRuntimes: "deno:" + deno},
			map[string]Status{"yt-dlp": Fail}, "deno 2.9.6", []string{"install yt-dlp"}, false, true},
		{"unreadable version", Config{YtDlp: git, JSRuntimes: "deno:" + deno},
			map[string]Status{"yt-dlp": Warn, "yt-dlp js": Warn}, "deno 2.9.6", []string{`version "master@abc123" names no release date`}, false, false},
		{"ffmpeg missing", Config{YtDlp: current, JSRuntimes: "deno:" + deno, FFmpeg: missing},
			map[string]Status{"ffmpeg": Fail, "ffprobe": OK}, "deno 2.9.6", nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.Now = func() time.Time { return now }
			if cfg.FFmpeg == "" {
				cfg.FFmpeg = ffmpeg
			}
			cfg.FFprobe = ffprobe
			r := Run(context.Background(), cfg)
			for name, want := range tc.want {
				require.Equal(t, want, find(t, r, name).Status, "%s: %+v", name, find(t, r, name))
			}
			require.Equal(t, tc.runtime, r.YtDlp.JSRuntime)
			require.Equal(t, tc.stale, r.YtDlp.Stale(now))
			require.Equal(t, tc.fail, r.Failed())
			var text bytes.Buffer
			require.NoError(t, r.WriteText(&text))
			require.Len(t, strings.Split(strings.TrimSpace(text.String()), "\n"), len(r.Checks), "one line a check:\n%s", text.String())
			for _, s := range tc.contains {
				require.Contains(t, text.String(), s)
			}
		})
	}
	t.Run("ffmpeg's version", func(t *testing.T) {
		t.Parallel()
		r := Run(context.Background(), Config{YtDlp: current, JSRuntimes: "deno:" + deno, FFmpeg: ffmpeg, FFprobe: ffprobe, Now: func() time.Time { return now }})
		require.Equal(t, "5.1.9-0+deb12u1", r.FFmpeg)
		require.Equal(t, "5.1.9-0+deb12u1", r.FFprobe)
	})
}

// TestJSONIsWhatHealthReports: --json carries every check and the "tools"
// object /health/ready serves.
func TestJSONIsWhatHealthReports(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{YtDlp: fake(t, dir, "yt-dlp", "2023.03.04"), JSRuntimes: "deno:" + fake(t, dir, "deno", "deno 2.9.6 (stable)"),
		FFmpeg: fake(t, dir, "ffmpeg", "ffmpeg version 7.1 Copyright"), FFprobe: fake(t, dir, "ffprobe", "ffprobe version 7.1 Copyright"),
		Now: func() time.Time { return now }}
	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), cfg).WriteJSON(&out))
	var got struct {
		OK     bool
		Checks []Check
		Tools  map[string]any
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	require.True(t, got.OK)
	require.Len(t, got.Checks, 7)
	require.Equal(t, map[string]any{
		"yt_dlp": map[string]any{"version": "2023.03.04", "released": "2023-03-04", "age_days": float64(1369), "stale": true, "js_runtime": "deno 2.9.6"},
		"ffmpeg": "7.1", "ffprobe": "7.1",
	}, got.Tools)
}

func TestCookies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	future, past := now.Add(30*24*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	cookie := func(domain string, exp int64) string {
		return fmt.Sprintf("%s\tTRUE\t/\tTRUE\t%d\tSID\tsecret-value", domain, exp)
	}
	file := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
		return p
	}
	const header = "# Netscape HTTP Cookie File"
	for _, tc := range []struct {
		name   string
		path   string
		status Status
		detail string
	}{
		{"none", "", OK, "none"},
		{"good", file("good.txt", header, "", cookie(".youtube.com", future), "#HttpOnly_"+cookie(".youtube.com", 0), cookie(".youtube.com", past), cookie(".google.com", future)),
			OK, "3 youtube.com cookies, 1 expired (4 cookies in all)"},
		{"all expired", file("expired.txt", header, cookie(".youtube.com", past), cookie("www.youtube.com", past)), Warn, "2 youtube.com cookies, 2 expired"},
		{"no youtube", file("google.txt", header, cookie(".google.com", future)), Warn, "0 youtube.com cookies"},
		{"not youtube, though it ends like it", file("lookalike.txt", header, cookie(".notyoutube.com", future)), Warn, "0 youtube.com cookies"},
		{"no header", file("noheader.txt", cookie(".youtube.com", future)), Warn, "1 youtube.com cookies"},
		{"json", file("cookies.json", `[{"domain": ".youtube.com", "name": "SID"}]`), Fail, "JSON"},
		{"garbage", file("garbage.txt", header, "youtube.com SID x"), Fail, "line 2 is not a Netscape cookie"},
		{"missing", filepath.Join(dir, "nope.txt"), Fail, "no such file"},
	} {
		c := checkCookies(tc.path, now)
		require.Equal(t, tc.status, c.Status, "%s: %+v", tc.name, c)
		require.Contains(t, c.Detail, tc.detail, tc.name)
		require.NotContains(t, c.Detail+c.Fix, "secret-value", "a cookie's value is never shown")
	}
}

func TestEveryProxyOfThePoolIsDialled(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.Addr().String()
	closed.Close()
	ctx := context.Background()
	pool := func(proxies ...string) *outbound.Pool {
		p, err := outbound.New(ctx, slog.New(slog.DiscardHandler), outbound.Config{Proxies: proxies}, nil, nil)
		require.NoError(t, err)
		return p
	}

	cs := checkProxies(ctx, pool("socks5://alice:hunter2@"+ln.Addr().String(), "http://alice:hunter2@"+closedAddr), 3*time.Second)
	require.Len(t, cs, 2)
	require.Equal(t, OK, cs[0].Status, cs[0].Detail)
	require.Contains(t, cs[0].Detail, ln.Addr().String()+" accepts connections")
	require.Equal(t, Fail, cs[1].Status)
	require.Contains(t, cs[1].Detail, "connection refused")
	for _, c := range cs {
		require.NotContains(t, c.Detail+c.Fix, "hunter2", "credentials are never shown")
		require.NotContains(t, c.Detail+c.Fix, "alice")
	}

	// A proxy the pool rests is reachable but warned of.
	p := pool("http://" + ln.Addr().String())
	l, err := p.Pick(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Report(ctx, l, &job.Error{Code: job.CodeBotCheck}))
	cs = checkProxies(ctx, p, 3*time.Second)
	require.Equal(t, Warn, cs[0].Status)
	require.Contains(t, cs[0].Detail, "rests until")
	require.Contains(t, cs[0].Detail, job.CodeBotCheck)

	for _, p := range []*outbound.Pool{nil, pool()} {
		cs = checkProxies(ctx, p, time.Second)
		require.Len(t, cs, 1)
		require.Equal(t, OK, cs[0].Status, "no proxy: downloads go direct")
	}
}

// TestRealTools runs the checks on the programs this machine has: Debian's
// ffmpeg and yt-dlp (make deps), and the Deno make deps installs
// ($YTCAPTION_DENO_BIN, set by the Makefile).
func TestRealTools(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"yt-dlp", "ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (make deps)", p)
		}
	}
	deno := os.Getenv("YTCAPTION_DENO_BIN")
	if deno == "" {
		t.Skip("YTCAPTION_DENO_BIN is not set: run the tests with make test, which installs Deno")
	}
	r := Run(context.Background(), Config{JSRuntimes: "deno:" + deno})
	var text bytes.Buffer
	require.NoError(t, r.WriteText(&text))
	t.Logf("doctor on this machine:\n%s", text.String())
	require.Equal(t, OK, find(t, r, "ffmpeg").Status)
	require.Equal(t, OK, find(t, r, "ffprobe").Status)
	require.Regexp(t, `^\d+\.\d+`, r.FFmpeg)
	require.NotEqual(t, Fail, find(t, r, "yt-dlp").Status)
	require.Equal(t, OK, find(t, r, "js runtime").Status, find(t, r, "js runtime").Detail)
	require.Regexp(t, `^deno [2-9]\.\d+\.\d+$`, r.YtDlp.JSRuntime)
}
