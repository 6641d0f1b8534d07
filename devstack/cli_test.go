package devstack

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/wer"
)

// The ytcaption command-line client, driven as a user drives it: the real
// binary against the dev stack, through the public REST API only.

// builds are the binaries tests run, built once per test run.
var builds sync.Map // package path → *build

type build struct {
	once sync.Once
	path string
	err  error
}

// goBinary builds the command in pkg (relative to this package) once.
func goBinary(t *testing.T, pkg string, args ...string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "ytcaption-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		if out, err := exec.Command("go", append(append([]string{"build"}, args...), "-o", b.path, pkg)...).CombinedOutput(); err != nil {
			b.err = errors.New(string(out))
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// cliBinary is the ytcaption client.
func cliBinary(t *testing.T) string {
	return goBinary(t, "../edge/cmd/ytcaption", "-ldflags", "-X main.version=test")
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// cliEnv is the environment of a user who has set the server and key.
func cliEnv(t *testing.T, s testStack) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "YTCAPTION_URL=" + s.EdgeURL, "YTCAPTION_API_KEY=" + s.APIKey}
}

func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run ytcaption %v: %v", args, err)
	}
	return cliResult{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// controlChars are what a log must not get from a non-terminal run.
var controlChars = regexp.MustCompile(`[\x00-\x08\x0b-\x1f\x7f]`)

func TestCLI(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	media, refs := mediaServer(t)
	env := cliEnv(t, s)
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}

	t.Run("transcribe a LibriVox clip to an SRT file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "clip.srt")
		r := runCLI(t, env, "transcribe", media+"/"+firstClip(refs)+".ogg", "-o", out, "--follow")
		require.Equal(t, 0, r.code, r.stderr)
		srt, err := os.ReadFile(out)
		require.NoError(t, err)
		id := regexp.MustCompile(`job (\S+): `).FindStringSubmatch(r.stderr)
		require.NotNil(t, id, r.stderr)
		code, served := api.do("GET", "/v1/jobs/"+id[1]+"/transcript?format=srt", nil)
		require.Equal(t, 200, code)
		require.Equal(t, string(served), string(srt), "the file holds the server's captions")
		require.Regexp(t, `(?m)^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\n`, string(srt))
		var text []string
		for _, l := range strings.Split(string(srt), "\n") {
			if l != "" && !strings.Contains(l, "-->") && !regexp.MustCompile(`^\d+$`).MatchString(l) {
				text = append(text, l)
			}
		}
		require.Less(t, wer.Rate(refs[firstClip(refs)], strings.Join(text, " ")), 0.8, "the captions are of the clip's speech")
		require.Empty(t, r.stdout, "captions went to the file")
		require.False(t, controlChars.MatchString(r.stderr), "non-terminal output has no control characters: %q", r.stderr)
		require.Regexp(t, `(?s)^job \S+: queued\n.*transcribing.*\[00:00:0.*succeeded`, r.stderr, "stages (a brief one may pass unseen), then segments (--follow)")
		require.Contains(t, r.stderr, "captions written to "+out)
	})

	t.Run("no-wait, then jobs get and list", func(t *testing.T) {
		r := runCLI(t, env, "transcribe", "--no-wait", media+"/"+firstClip(refs)+".ogg")
		require.Equal(t, 0, r.code, r.stderr)
		id := strings.TrimSpace(r.stdout)
		require.Regexp(t, `^[0-9a-f-]{36}$`, id)
		api.waitFor(id, 60*time.Second, terminal)
		r = runCLI(t, env, "jobs", "get", id, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var j jobJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &j), r.stdout)
		require.Equal(t, id, j.ID)
		require.Equal(t, "succeeded", j.Status)
		r = runCLI(t, env, "jobs", "list")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, id)
		r = runCLI(t, env, "jobs", "transcript", id, "--format", "txt")
		require.Equal(t, 0, r.code, r.stderr)
		require.NotEmpty(t, strings.TrimSpace(r.stdout))
	})

	t.Run("task and prompt reach core", func(t *testing.T) {
		// The stack's one gpu-node (pocketsphinx, which has run the jobs
		// above) advertises neither translation nor prompts, so core
		// refuses each at creation — naming the option the CLI sent.
		for _, tc := range []struct{ flag, value, says string }{
			{"--task", "translate", "can translate"},
			{"--prompt", "Dashwood", "takes a prompt"},
		} {
			r := runCLI(t, env, "transcribe", media+"/"+firstClip(refs)+".ogg?"+tc.value, tc.flag, tc.value, "--no-wait", "--json")
			require.Equal(t, 2, r.code, "input the server rejected as invalid: %s %s", r.stdout, r.stderr)
			var e struct {
				Error struct{ Code, Message string }
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &e), r.stdout)
			require.Equal(t, "unsupported_option", e.Error.Code)
			require.Contains(t, e.Error.Message, tc.says)
		}
		require.Equal(t, 2, runCLI(t, env, "transcribe", media+"/a.ogg", "--task", "summarise").code)
	})

	t.Run("a local file is uploaded and followed", func(t *testing.T) {
		clip := filepath.Join(librivox, firstClip(refs)+".wav")
		out := filepath.Join(t.TempDir(), "clip.srt")
		r := runCLI(t, env, "transcribe", clip, "-o", out)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stderr, "uploading "+firstClip(refs)+".wav")
		id := regexp.MustCompile(`job (\S+): succeeded`).FindStringSubmatch(r.stderr)
		require.NotNil(t, id, r.stderr)
		require.Equal(t, "upload:"+firstClip(refs)+".wav", api.waitFor(id[1], time.Second, terminal).URL)
		srt, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Regexp(t, `(?m)^1\n00:00:\d\d,\d{3} --> `, string(srt))
	})

	t.Run("jobs the server does not know, or that have ended", func(t *testing.T) {
		r := runCLI(t, env, "jobs", "get", "nope")
		require.Equal(t, 1, r.code, r.stderr)
		require.Equal(t, "ytcaption: no job nope: find your jobs' ids with \"ytcaption jobs list\"\n", r.stderr)
		r = runCLI(t, env, "jobs", "cancel", "nope", "--json")
		require.Equal(t, 1, r.code, r.stderr)
		require.Contains(t, r.stdout, `"code": "not_found"`)

		r = runCLI(t, env, "transcribe", "--no-wait", media+"/"+firstClip(refs)+".ogg?cancel-finished")
		require.Equal(t, 0, r.code, r.stderr)
		id := strings.TrimSpace(r.stdout)
		require.Equal(t, "succeeded", api.waitFor(id, 60*time.Second, terminal).Status)
		r = runCLI(t, env, "jobs", "cancel", id)
		require.Equal(t, 1, r.code, "a succeeded job is not cancelled: %s", r.stderr)
		require.Equal(t, "ytcaption: job "+id+" had already finished (succeeded): nothing to cancel\n", r.stderr)
		require.Equal(t, "succeeded", api.waitFor(id, time.Second, terminal).Status)
	})

	t.Run("a failed job exits 1 with its error code", func(t *testing.T) {
		r := runCLI(t, env, "transcribe", media+"/notmedia.txt")
		require.Equal(t, 1, r.code, r.stderr)
		require.Contains(t, r.stderr, "failed: not_media:")
		r = runCLI(t, env, "transcribe", media+"/notmedia.txt", "--json")
		require.Equal(t, 1, r.code, r.stderr)
		var j jobJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &j), r.stdout)
		require.Equal(t, "not_media", j.Error.Code)
	})

	t.Run("exit codes for usage, auth and network", func(t *testing.T) {
		require.Equal(t, 2, runCLI(t, env).code)
		require.Equal(t, 2, runCLI(t, env, "transcribe", media+"/a.ogg", "--format", "docx").code)
		require.Equal(t, 2, runCLI(t, env, "transcribe", "not a url").code)
		bad := slices.Clone(env)
		bad[len(bad)-1] = "YTCAPTION_API_KEY=ytc_not-a-key-0123456789"
		r := runCLI(t, bad, "jobs", "list", "--json")
		require.Equal(t, 3, r.code, r.stderr)
		require.Contains(t, r.stdout, `"code": "unauthorized"`)
		noKey := env[:len(env)-1]
		require.Equal(t, 3, runCLI(t, noKey, "jobs", "list").code)
		down := slices.Clone(env)
		down[2] = "YTCAPTION_URL=http://127.0.0.1:9"
		r = runCLI(t, down, "jobs", "list")
		require.Equal(t, 4, r.code)
		require.Contains(t, r.stderr, "cannot reach ytcaption at http://127.0.0.1:9: connection refused — is it running?")
	})

	t.Run("login at core's port says it is not an edge", func(t *testing.T) {
		home := t.TempDir()
		r := runCLI(t, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, "login", "--url", s.CoreURL, "--api-key", s.APIKey)
		require.Equal(t, 4, r.code, r.stderr)
		require.Contains(t, r.stderr, s.CoreURL+" is not a ytcaption edge")
		require.NoFileExists(t, filepath.Join(home, ".config", "ytcaption", "config.json"))
	})

	t.Run("login keeps the URL and key for its owner only", func(t *testing.T) {
		home := t.TempDir()
		plain := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
		cmd := exec.Command(cliBinary(t), "login", "--url", s.EdgeURL)
		cmd.Env = plain
		cmd.Stdin = strings.NewReader(s.APIKey + "\n")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		fi, err := os.Stat(filepath.Join(home, ".config", "ytcaption", "config.json"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		r := runCLI(t, plain, "jobs", "list", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, 3, runCLI(t, plain, "login", "--url", s.EdgeURL, "--api-key", "ytc_wrong-key-0123456789").code)
	})

	t.Run("Ctrl-C cancels the job with --cancel-on-interrupt", func(t *testing.T) {
		cmd := exec.Command(cliBinary(t), "transcribe", media+"/long.ogg", "--cancel-on-interrupt")
		cmd.Env = env
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(stderr)
		var id string
		for sc.Scan() {
			if m := regexp.MustCompile(`^job (\S+): transcribing`).FindStringSubmatch(sc.Text()); m != nil {
				id = m[1]
				break
			}
		}
		require.NotEmpty(t, id, "the job never reached transcribing")
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		rest, _ := io.ReadAll(stderr)
		err = cmd.Wait()
		require.Equal(t, 130, cmd.ProcessState.ExitCode(), "%v: %s", err, rest)
		require.Contains(t, string(rest), "job "+id+": cancelled")
		require.Equal(t, "cancelled", api.waitFor(id, 30*time.Second, terminal).Status)
	})
}

// TestCLIProgressBarOnATerminal runs the client under a pseudo-terminal, as a
// person would, and watches the bar move through the stages.
func TestCLIProgressBarOnATerminal(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	media, refs := mediaServer(t)
	cmd := exec.Command(cliBinary(t), "transcribe", media+"/"+firstClip(refs)+".ogg", "-o", filepath.Join(t.TempDir(), "c.vtt"), "--format", "vtt")
	cmd.Env = append(cliEnv(t, s), "TERM=xterm")
	tty, err := pty.Start(cmd)
	require.NoError(t, err)
	defer tty.Close()
	var screen bytes.Buffer
	_, _ = io.Copy(&screen, tty) // until the client exits (EIO on Linux)
	require.NoError(t, cmd.Wait())

	// Each redraw starts with a carriage return and a clear-line: the job's
	// short id, the media's title, the stage, the bar and its share.
	frames := strings.Split(screen.String(), "\r\x1b[K")
	var stages []string
	var pcts []string // the bar's percentages, in order
	bar := regexp.MustCompile(`^([0-9a-f]{8}) (.*)  (queued|downloading|waiting for a GPU|transcribing|succeeded) ([█░]{20})\s+(\d+)%`)
	var ids, titles []string
	for _, f := range frames {
		if m := bar.FindStringSubmatch(f); m != nil {
			ids, titles = append(ids, m[1]), append(titles, m[2])
			if len(stages) == 0 || stages[len(stages)-1] != m[3] {
				stages = append(stages, m[3])
			}
			if len(pcts) == 0 || pcts[len(pcts)-1] != m[5] {
				pcts = append(pcts, m[5])
			}
		}
	}
	require.NotEmpty(t, ids, "frames: %q", frames)
	require.Len(t, slices.Compact(ids), 1, "one job's id on every frame")
	require.NotEmpty(t, titles[len(titles)-1], "the media is named")
	for i := 1; i < len(pcts); i++ {
		a, _ := strconv.Atoi(pcts[i-1])
		b, _ := strconv.Atoi(pcts[i])
		require.LessOrEqual(t, a, b, "the bar never goes back: %v", pcts)
	}
	require.Subset(t, stages, []string{"queued", "transcribing", "succeeded"}, "frames: %q", frames)
	require.Equal(t, "succeeded", stages[len(stages)-1])
	require.Less(t, slices.Index(stages, "queued"), slices.Index(stages, "transcribing"), "stages in order: %v", stages)
	// A short clip may be one utterance: the bar goes from empty to full.
	require.Equal(t, "0", pcts[0])
	require.Equal(t, "100", pcts[len(pcts)-1], "the bar filled: %v", pcts)
	require.Contains(t, screen.String(), "captions written to")
}

// firstClip is a LibriVox clip of the test data, the same every run.
func firstClip(refs map[string]string) string {
	ids := make([]string, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids[0]
}

// TestCLICtrlCAsksOnATerminal presses Ctrl-C on a pseudo-terminal while the
// job transcribes and answers the client's question with "y".
func TestCLICtrlCAsksOnATerminal(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	media, _ := mediaServer(t)
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	cmd := exec.Command(cliBinary(t), "transcribe", media+"/long.ogg")
	cmd.Env = append(cliEnv(t, s), "TERM=xterm")
	tty, err := pty.Start(cmd)
	require.NoError(t, err)
	defer tty.Close()
	screen := make(chan string, 64)
	go func() {
		defer close(screen)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			if n > 0 {
				screen <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	var seen strings.Builder
	waitFor := func(what string) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for !strings.Contains(seen.String(), what) {
			select {
			case chunk, ok := <-screen:
				require.True(t, ok, "the client exited before showing %q: %q", what, seen.String())
				seen.WriteString(chunk)
			case <-deadline:
				t.Fatalf("no %q on the terminal: %q", what, seen.String())
			}
		}
	}
	waitFor("transcribing")
	_, err = tty.Write([]byte{3}) // Ctrl-C: the terminal sends SIGINT to the client
	require.NoError(t, err)
	waitFor("Cancel job ")
	id := regexp.MustCompile(`Cancel job (\S+)\?`).FindStringSubmatch(seen.String())[1]
	_, err = tty.Write([]byte("y\r"))
	require.NoError(t, err)
	waitFor(": cancelled")
	for range screen {
	}
	_ = cmd.Wait()
	require.Equal(t, 130, cmd.ProcessState.ExitCode())
	require.Equal(t, "cancelled", api.waitFor(id, 30*time.Second, terminal).Status)
}
