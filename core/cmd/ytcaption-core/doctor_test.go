package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/envflag"
)

func script(t *testing.T, dir, name, out string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o755))
	return p
}

// TestDoctorCommand: the flags and their YTCAPTION_CORE_* twins reach the
// checks, one line a check, and the exit status says whether one FAILed.
func TestDoctorCommand(t *testing.T) {
	dir := t.TempDir()
	current := script(t, dir, "yt-dlp", time.Now().AddDate(0, 0, -3).Format("2006.01.02"))
	deno := script(t, dir, "deno", "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)")
	ffmpeg := script(t, dir, "ffmpeg", "ffmpeg version 7.1.1 Copyright (c) 2000-2025 the FFmpeg developers")
	ffprobe := script(t, dir, "ffprobe", "ffprobe version 7.1.1 Copyright (c) 2007-2025 the FFmpeg developers")
	env := map[string]string{"YTCAPTION_CORE_YT_DLP": current, "YTCAPTION_CORE_JS_RUNTIMES": "deno:" + deno,
		"YTCAPTION_CORE_FFMPEG": ffmpeg, "YTCAPTION_CORE_FFPROBE": ffprobe}
	doctor := func(env map[string]string, args ...string) (string, int) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"doctor"}, args...), func(k string) string { return env[k] }, &out, io.Discard)
		return out.String(), envflag.ExitStatus("ytcaption-core", err, io.Discard)
	}

	out, status := doctor(env)
	require.Equal(t, 0, status, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 7, out)
	for _, l := range lines {
		require.Regexp(t, `^(ok  |warn|FAIL)  `, l)
	}
	require.Contains(t, out, "ok    js runtime  deno 2.9.6 ("+deno+")")
	require.Contains(t, out, "ok    ffmpeg      7.1.1")
	require.Contains(t, out, "3 days ago (at most 60)")

	// The flag wins over its variable; a current yt-dlp without a runtime fails.
	out, status = doctor(env, "--js-runtimes", "node:"+filepath.Join(dir, "no-node"))
	require.Equal(t, 1, status, out)
	require.Contains(t, out, "FAIL  js runtime  none works")

	// --yt-dlp-max-age takes days.
	out, status = doctor(env, "--yt-dlp-max-age", "2d")
	require.Equal(t, 0, status, "a stale yt-dlp warns, it does not fail")
	require.Contains(t, out, "warn  yt-dlp")
	require.Contains(t, out, "(more than 2)")

	cookies := filepath.Join(dir, "cookies.txt")
	require.NoError(t, os.WriteFile(cookies, []byte("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret\n"), 0o600))
	out, status = doctor(env, "--json", "--yt-dlp-cookies", cookies)
	require.Equal(t, 0, status)
	var report struct {
		OK     bool
		Checks []struct{ Name, Status, Detail string }
		Tools  struct {
			YtDlp struct {
				Version   string
				AgeDays   int    `json:"age_days"`
				JSRuntime string `json:"js_runtime"`
			} `json:"yt_dlp"`
			FFmpeg string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &report), out)
	require.True(t, report.OK)
	require.Equal(t, 3, report.Tools.YtDlp.AgeDays)
	require.Equal(t, "deno 2.9.6", report.Tools.YtDlp.JSRuntime)
	require.Equal(t, "7.1.1", report.Tools.FFmpeg)
	require.Contains(t, out, "1 youtube.com cookies, 0 expired")
	require.NotContains(t, out, "secret")

	_, status = doctor(env, "--yt-dlp-max-age", "soon")
	require.Equal(t, 2, status, "a bad age is a usage error")
	_, status = doctor(env, "--yt-dlp", filepath.Join(dir, "missing"))
	require.Equal(t, 1, status, "no yt-dlp fails")
}

func TestAgeFlag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"60d": 60 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour} {
		var a ageValue
		require.NoError(t, a.Set(in), in)
		require.Equal(t, want, time.Duration(a), in)
	}
	for _, in := range []string{"", "d", "-3d", "0d", "0s", "sixty days", "1.5d"} {
		var a ageValue
		require.Error(t, a.Set(in), in)
	}
	a := ageValue(60 * 24 * time.Hour)
	require.Equal(t, "60d", a.String())
	a = ageValue(36 * time.Hour)
	require.Equal(t, "36h0m0s", a.String())
}

// TestServeAndDoctorShareTheToolFlags: what doctor checks is what serve
// would run, named by the same flags and variables.
func TestServeAndDoctorShareTheToolFlags(t *testing.T) {
	t.Parallel()
	help := func(cmd string) string {
		var out bytes.Buffer
		err := run(context.Background(), []string{cmd, "--help"}, func(string) string { return "" }, &out, io.Discard)
		require.ErrorIs(t, err, flag.ErrHelp)
		return out.String()
	}
	serve, doctor := help("serve"), help("doctor")
	for _, f := range []string{"--yt-dlp\t", "--js-runtimes", "--yt-dlp-remote-components", "--yt-dlp-max-age", "--yt-dlp-cookies", "--yt-dlp-proxy", "--ffmpeg", "--ffprobe",
		"$YTCAPTION_CORE_JS_RUNTIMES", "$YTCAPTION_CORE_YT_DLP_MAX_AGE"} {
		require.Contains(t, serve, f)
		require.Contains(t, doctor, f)
	}
	require.Contains(t, serve, "(default 60d)")
	require.Contains(t, serve, "(default deno)")
}
