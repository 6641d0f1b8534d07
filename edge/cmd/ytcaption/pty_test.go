package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
)

// runOnATerminal runs the client (this test binary as main) under a
// pseudo-terminal of 120 columns, as a person would, and returns all it
// showed and its exit status.
func runOnATerminal(t *testing.T, env map[string]string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{cliUnderTest + "=1", "TERM=xterm", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	require.NoError(t, err)
	defer tty.Close()
	var screen bytes.Buffer
	_, _ = io.Copy(&screen, tty) // until the client exits (EIO on Linux)
	_ = cmd.Wait()
	return screen.String(), cmd.ProcessState.ExitCode()
}

// matches are the submatches of re in each redrawn frame, in order.
func matches(screen string, re *regexp.Regexp) [][]string {
	var out [][]string
	for _, f := range strings.Split(screen, "\r\x1b[K") {
		if m := re.FindStringSubmatch(f); m != nil {
			out = append(out, m)
		}
	}
	return out
}

// TestTheFileFormOnATerminal: a 10 MiB file's bytes fill one bar, redrawn
// in place, then the job's bar runs to succeeded and the captions follow.
func TestTheFileFormOnATerminal(t *testing.T) {
	t.Parallel()
	srv := newTusServer(t)
	dir := t.TempDir()
	file, want := randomFile(t, dir, "lecture.ogg", 10<<20)
	screen, code := runOnATerminal(t, map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": dir}, "transcribe", file)
	require.Equal(t, 0, code, screen)
	require.Equal(t, want, srv.received())

	bytesBar := matches(screen, regexp.MustCompile(`^lecture\.ogg  uploading ([█░]{20}) +(\d+)%  ([\d.]+)/10\.0 MiB  (?:[\d.]+ MiB/s  ETA \d+:\d\d  )?\d+:\d\d`))
	require.NotEmpty(t, bytesBar, "%q", screen)
	last := -1
	for _, m := range bytesBar {
		pct, _ := strconv.Atoi(m[2])
		require.GreaterOrEqual(t, pct, last, "the bar never goes back")
		last = pct
	}
	require.Equal(t, "100", bytesBar[len(bytesBar)-1][2])
	require.Equal(t, strings.Repeat("█", 20), bytesBar[len(bytesBar)-1][1])

	jobBar := matches(screen, regexp.MustCompile(`^j lecture\.ogg  (transcribing|succeeded) [█░]{20} +(\d+)%`))
	require.NotEmpty(t, jobBar, "%q", screen)
	require.Equal(t, "succeeded", jobBar[len(jobBar)-1][1])
	require.Less(t, strings.Index(screen, "uploading"), strings.Index(screen, "j lecture.ogg"), "bytes, then the job")
	require.Contains(t, screen, "hello")
}

// TestThePlaylistFormOnATerminal: one bar of the batch's jobs done, then
// the failure and the files written.
func TestThePlaylistFormOnATerminal(t *testing.T) {
	t.Parallel()
	srv := newBatchServer(t)
	dir := t.TempDir()
	screen, code := runOnATerminal(t, map[string]string{"YTCAPTION_URL": srv.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": dir},
		"transcribe", "https://www.youtube.com/playlist?list=PL0123456789", "-o", filepath.Join(dir, "out")+"/")
	require.Equal(t, exitFailed, code, screen)
	frames := matches(screen, regexp.MustCompile(`^batch b1  (enumerating|running|done) ([█░]{20}) (\d)/(\d) done(  (\d) failed)?  \d+:\d\d`))
	require.NotEmpty(t, frames, "%q", screen)
	var seen []string
	for _, m := range frames {
		seen = append(seen, m[1]+" "+m[3]+"/"+m[4]+m[5])
	}
	require.Equal(t, []string{"enumerating 0/0", "running 1/3", "done 3/3  1 failed"}, seen)
	require.Equal(t, strings.Repeat("█", 20), frames[len(frames)-1][2])
	require.Contains(t, screen, "j3  ccccccccccc  media_unavailable: the video is private")
	require.FileExists(t, filepath.Join(dir, "out", "_.._etc_passwd.srt"))
}
