package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCaptionFilesInEveryFormat: --format ass --karaoke asks the server for
// ASS with karaoke, and names the files .ass; --format ttml and sbv name
// theirs after the format too.
func TestCaptionFilesInEveryFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		ext  string
		asks string
	}{
		{[]string{"--format", "ass", "--karaoke"}, "ass", "ass karaoke=true"},
		{[]string{"--format", "vtt", "--karaoke"}, "vtt", "vtt karaoke=true"},
		{[]string{"--format", "ttml"}, "ttml", "ttml"},
		{[]string{"--format", "sbv"}, "sbv", "sbv"},
	} {
		srv := newBatchServer(t)
		top := t.TempDir()
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"transcribe", "https://www.youtube.com/playlist?list=PL0123456789", "-o", top + "/"}, tc.args...),
			srv.env(t, &out, &errOut))
		require.Equal(t, exitFailed, code, errOut.String()) // one of the batch's jobs failed
		require.Equal(t, []string{"Talk_ one_two." + tc.ext, "_.._etc_passwd." + tc.ext}, files(t, top), tc.args)
		require.Equal(t, map[string]string{"j1": tc.asks, "j2": tc.asks}, srv.transcrpt, tc.args)
	}
}

// TestKaraokeNeedsAssOrVtt: --karaoke with a format that cannot highlight
// words is a usage error before anything is sent.
func TestKaraokeNeedsAssOrVtt(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"transcribe", "https://example.com/a.ogg", "--format", "srt", "--karaoke"},
		{"jobs", "transcript", "j1", "--format", "ttml", "--karaoke", "-o", filepath.Join(t.TempDir(), "x.ttml")},
	} {
		srv := newBatchServer(t)
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, srv.env(t, &out, &errOut))
		require.Equal(t, exitUsage, code, errOut.String())
		require.Contains(t, errOut.String(), "--karaoke needs --format ass or vtt", args)
		require.Empty(t, srv.transcrpt, "nothing was asked of the server")
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"jobs", "transcript", "j1", "--format", "ssa"}, testEnv(&out, &errOut))
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut.String(), "srt, vtt, ass, ttml, sbv, txt, json, tsv")
}

// TestJobsTranscriptRevision: jobs transcript asks for the latest revision
// unless --revision names one (0: the machine's original).
func TestJobsTranscriptRevision(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		asks string
	}{
		{nil, "srt"},
		{[]string{"--revision", "0"}, "srt revision=0"},
		{[]string{"--revision", "3", "--format", "vtt"}, "vtt revision=3"},
	} {
		srv := newBatchServer(t)
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"jobs", "transcript", "j1", "-o", filepath.Join(t.TempDir(), "x")}, tc.args...),
			srv.env(t, &out, &errOut))
		require.Equal(t, 0, code, errOut.String())
		require.Equal(t, map[string]string{"j1": tc.asks}, srv.transcrpt, tc.args)
	}
}
