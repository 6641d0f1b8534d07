package devstack

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
)

// TestCLIBatchesAndResumableUploads drives the ytcaption client against the
// whole stack: a page of five <video>s as a batch (the real yt-dlp lists
// it) written into a directory, and the batches commands.
func TestCLIBatches(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it)")
	}
	media, refs := mediaServer(t)
	ids := make([]string, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head><title>Sense and Sensibility</title></head><body>")
		for _, id := range ids {
			fmt.Fprintf(w, "<video controls src=\"%s/%s.ogg\"></video>\n", media, id)
		}
		fmt.Fprint(w, "</body></html>")
	}))
	t.Cleanup(page.Close)
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.YtDlpExtractors = "generic,html5" })
	env := cliEnv(t, s)

	var batchID string
	t.Run("a page of five videos into a directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "talks")
		r := runCLI(t, env, "transcribe", "--batch", page.URL+"/talks.html", "-o", dir+"/", "--format", "vtt", "--language", "en")
		require.Equal(t, 0, r.code, r.stderr)
		require.False(t, controlChars.MatchString(r.stderr), "plain lines off a terminal: %q", r.stderr)
		m := regexp.MustCompile(`(?m)^batch (\S+): done, 5 of 5 done$`).FindStringSubmatch(r.stderr)
		require.NotNil(t, m, r.stderr)
		batchID = m[1]
		require.Contains(t, r.stderr, "5 caption files written to "+dir+"/")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, len(ids))
		for _, e := range entries {
			require.True(t, strings.HasSuffix(e.Name(), ".vtt"), e.Name())
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(b), "WEBVTT"), "%s: %q", e.Name(), b)
		}
	})

	t.Run("on a terminal: one bar of the batch", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "talks")
		cmd := exec.Command(cliBinary(t), "transcribe", "--batch", page.URL+"/again.html", "-o", dir+"/", "--language", "en")
		cmd.Env = append(slices.Clone(env), "TERM=xterm")
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
		require.NoError(t, err)
		defer tty.Close()
		var screen bytes.Buffer
		_, _ = io.Copy(&screen, tty) // until the client exits (EIO on Linux)
		require.NoError(t, cmd.Wait(), screen.String())
		bar := regexp.MustCompile(`^batch [0-9a-f]{8}  (enumerating|running|done) ([█░]{20}) (\d)/(\d) done  \d+:\d\d`)
		var last []string
		for _, f := range strings.Split(screen.String(), "\r\x1b[K") {
			if m := bar.FindStringSubmatch(f); m != nil {
				last = m
			}
		}
		require.NotNil(t, last, "%q", screen.String())
		require.Equal(t, []string{"done", strings.Repeat("█", 20), "5", "5"}, last[1:], "%q", screen.String())
		require.Contains(t, screen.String(), "5 caption files written to "+dir+"/")
	})

	t.Run("batches list and get", func(t *testing.T) {
		require.NotEmpty(t, batchID)
		r := runCLI(t, env, "batches", "list")
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `(?m)^`+batchID+`\s+done\s+5/5\s+0\s`, r.stdout)
		r = runCLI(t, env, "batches", "get", batchID)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "jobs:       5 (queued 0, running 0, succeeded 5, failed 0, cancelled 0)")
		r = runCLI(t, env, "batches", "cancel", batchID)
		require.Equal(t, 1, r.code, "an ended batch: nothing to cancel")
	})
}
