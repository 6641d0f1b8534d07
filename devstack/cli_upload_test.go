package devstack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
)

// TestCLIResumableUploads drives the ytcaption client's uploads (tus)
// against the whole stack: one a run before had left half sent, which the
// next run resumes and transcribes; one on a terminal, its bytes' bar then
// its job's; and a 128 MiB one stopped with Ctrl-C and finished by the
// same command again.
func TestCLIResumableUploads(t *testing.T) {
	t.Parallel()
	_, refs := mediaServer(t)
	ids := make([]string, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s := startStack(t, "yt-dlp")
	env := cliEnv(t, s)

	t.Run("a half-sent upload is resumed by the next run", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "clip.ogg")
		ffmpeg(t, "-i", filepath.Join(librivox, ids[0]+".wav"), "-c:a", "libvorbis", file)
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		half := len(data) / 2
		// What a run that died after its first PATCH left: an upload on the
		// server holding half the file, and its URL in the client's cache.
		api := client{t: t, base: s.EdgeURL, key: s.APIKey}
		req, err := http.NewRequest(http.MethodPost, s.EdgeURL+"/v1/uploads", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+api.key)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		loc := resp.Header.Get("Location")
		req, err = http.NewRequest(http.MethodPatch, loc, strings.NewReader(string(data[:half])))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+api.key)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		fi, err := os.Stat(file)
		require.NoError(t, err)
		cache := filepath.Join(dir, "cache")
		require.NoError(t, os.MkdirAll(filepath.Join(cache, "ytcaption"), 0o700))
		// The client's record: server, absolute path, size, mtime.
		key := fmt.Sprintf("%s %s %d %d", s.EdgeURL, file, fi.Size(), fi.ModTime().UnixNano())
		require.NoError(t, os.WriteFile(filepath.Join(cache, "ytcaption", "uploads.json"),
			[]byte(fmt.Sprintf(`{%q: {"url": %q, "created": "2099-01-01T00:00:00Z"}}`, key, loc)), 0o600))

		out := filepath.Join(dir, "clip.srt")
		r := runCLI(t, append(env, "XDG_CACHE_HOME="+cache), "transcribe", file, "-o", out)
		require.Equal(t, 0, r.code, r.stderr)
		first, _, _ := strings.Cut(r.stderr, "\n")
		require.Regexp(t, `^uploading clip\.ogg: (49|50)% \(`, first, "the run starts where the last one stopped")
		require.Contains(t, r.stderr, "uploading clip.ogg: 100%")
		require.Contains(t, r.stderr, "captions written to "+out)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Contains(t, string(b), "-->", "an SRT of the clip")
		state, err := os.ReadFile(filepath.Join(cache, "ytcaption", "uploads.json"))
		require.NoError(t, err)
		require.NotContains(t, string(state), loc, "a job holds the upload: nothing left to resume")
	})

	t.Run("on a terminal: the bytes' bar, then the job's", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "talk.ogg")
		ffmpeg(t, "-i", filepath.Join(librivox, ids[1]+".wav"), "-c:a", "libvorbis", file)
		cmd := exec.Command(cliBinary(t), "transcribe", file, "-o", filepath.Join(dir, "talk.srt"))
		cmd.Env = append(slices.Clone(env), "TERM=xterm", "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
		require.NoError(t, err)
		defer tty.Close()
		var screen bytes.Buffer
		_, _ = io.Copy(&screen, tty) // until the client exits (EIO on Linux)
		require.NoError(t, cmd.Wait(), screen.String())
		frames := strings.Split(screen.String(), "\r\x1b[K")
		upload := regexp.MustCompile(`^talk\.ogg  uploading ([█░]{20}) +(\d+)%`)
		job := regexp.MustCompile(`^[0-9a-f]{8} talk\.ogg  (queued|downloading|waiting for a GPU|transcribing|succeeded) [█░]{20} +(\d+)%`)
		lastUpload, firstJob, lastJob := -1, -1, -1
		var stage string
		for i, f := range frames {
			if m := upload.FindStringSubmatch(f); m != nil {
				require.Equal(t, -1, firstJob, "bytes before the job: %q", frames)
				lastUpload = i
				if m[2] == "100" {
					require.Equal(t, strings.Repeat("█", 20), m[1])
				}
			}
			if m := job.FindStringSubmatch(f); m != nil {
				if firstJob < 0 {
					firstJob = i
				}
				lastJob, stage = i, m[1]
			}
		}
		require.GreaterOrEqual(t, lastUpload, 0, "%q", screen.String())
		require.Regexp(t, `^talk\.ogg  uploading [█]{20} 100%`, frames[lastUpload])
		require.Greater(t, lastJob, lastUpload, "%q", screen.String())
		require.Equal(t, "succeeded", stage)
		require.Contains(t, screen.String(), "captions written to "+filepath.Join(dir, "talk.srt"))
	})

	t.Run("Ctrl-C pauses a large upload and the same command finishes it", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "big.ogg")
		f, err := os.Create(file)
		require.NoError(t, err)
		require.NoError(t, f.Truncate(128<<20))
		require.NoError(t, f.Close())
		runEnv := append(slices.Clone(env), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))

		cmd := exec.Command(cliBinary(t), "transcribe", file, "--no-wait")
		cmd.Env = runEnv
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "uploading big.ogg: 10%") {
				break
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		rest, _ := io.ReadAll(stderr)
		_ = cmd.Wait()
		require.Equal(t, 130, cmd.ProcessState.ExitCode(), "%s", rest)
		require.Contains(t, string(rest), "upload of big.ogg paused: run the same command again to resume it")

		r := runCLI(t, runEnv, "transcribe", file, "--no-wait")
		require.Equal(t, 0, r.code, r.stderr)
		first, _, _ := strings.Cut(r.stderr, "\n")
		m := regexp.MustCompile(`^uploading big\.ogg: (\d+)%`).FindStringSubmatch(first)
		require.NotNil(t, m, r.stderr)
		pct, _ := strconv.Atoi(m[1])
		// Stopped once the bar said 10 %: what the server had taken by then
		// is at least the chunks before the one in flight (8 MiB, 6 %), a
		// little under what the bar said.
		require.GreaterOrEqual(t, pct, 6, "resumed, not started over: %s", r.stderr)
		require.Contains(t, r.stderr, "uploading big.ogg: 100%")
		api := client{t: t, base: s.EdgeURL, key: s.APIKey}
		code, b := api.do("GET", "/v1/jobs/"+strings.TrimSpace(r.stdout), nil)
		require.Equal(t, http.StatusOK, code, string(b))
		require.Contains(t, string(b), `"url":"upload:big.ogg"`)
	})
}
