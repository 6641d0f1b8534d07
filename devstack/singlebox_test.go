package devstack

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/wer"
)

// TestSingleBoxNeedsNoServersAndKeepsItsStateAcrossARestart runs the README's
// `ytcaption-dev` as a user with nothing set up would — no server
// setting, the usual server variables pointing at closed ports, the default
// data directory under the user's data dir — transcribes a LibriVox clip
// through the public API, stops the process and starts it again, and finds
// the job, its transcript and the first run's API key still there.
func TestSingleBoxNeedsNoServersAndKeepsItsStateAcrossARestart(t *testing.T) {
	t.Parallel()
	media, refs := mediaServer(t)
	clip := firstClip(refs)
	home := t.TempDir()
	dataHome := filepath.Join(home, "data")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_DATA_HOME=" + dataHome,
		// Were anything to reach for a server, it would find none.
		"PGHOST=127.0.0.1", "PGPORT=1", "DATABASE_URL=postgres://127.0.0.1:1/x", "REDIS_URL=redis://127.0.0.1:1",
		"AWS_ENDPOINT_URL=http://127.0.0.1:1", "YTCAPTION_MINIO_BIN=/nonexistent"}

	type run struct {
		edgeURL, key string
		log          *lockedBuffer
		cmd          *exec.Cmd
	}
	start := func() run {
		cmd := exec.Command(goBinary(t, "./cmd/ytcaption-dev"), "--edge-addr", "127.0.0.1:0", "--connect-addr", "127.0.0.1:0",
			"--core-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-format", "json")
		cmd.Env = env
		r := run{log: &lockedBuffer{}, cmd: cmd}
		cmd.Stderr = r.log
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		restAPI, apiKey := regexp.MustCompile(`REST API:\s+(\S+)`), regexp.MustCompile(`API key:\s+(\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() && (r.edgeURL == "" || r.key == "") {
			if m := restAPI.FindStringSubmatch(sc.Text()); m != nil {
				r.edgeURL = m[1]
			}
			if m := apiKey.FindStringSubmatch(sc.Text()); m != nil {
				r.key = m[1]
			}
		}
		require.NotEmpty(t, r.key, "the dev stack did not start: %s", r.log.String())
		go func() {
			for sc.Scan() {
			}
		}()
		return r
	}
	stop := func(r run) {
		require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, r.cmd.Wait(), r.log.String())
	}

	first := start()
	// The first log line says where everything lives: no server in sight.
	line, _, _ := strings.Cut(first.log.String(), "\n")
	var backends map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &backends), line)
	require.Equal(t, "backends", backends["msg"])
	dataDir := filepath.Join(dataHome, "ytcaption")
	require.Equal(t, dataDir, backends["data_dir"])
	require.Equal(t, "sqlite "+filepath.Join(dataDir, "ytcaption.db"), backends["database"])
	require.Equal(t, "dir "+filepath.Join(dataDir, "blobs"), backends["blobs"])
	require.Equal(t, "in process", backends["rate_limits_and_replays"])

	api := client{t: t, base: first.edgeURL, key: first.key}
	j := api.create(media + "/" + clip + ".ogg")
	j = api.waitFor(j.ID, 3*time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status, "%+v\n%s", j.Error, first.log.String())
	code, text := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=txt", nil)
	require.Equal(t, http.StatusOK, code, string(text))
	require.Less(t, wer.Rate(refs[clip], string(text)), 0.8, "the transcript is of the clip's speech (pocketsphinx heard: %s)", text)
	// The audio went through core's own presigned-URL blob handler.
	require.Contains(t, first.log.String(), "job acquired")
	keys, err := filepath.Glob(filepath.Join(dataDir, "blobs", "audio", "*", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, keys, "the audio is a file in the data directory")

	// Idempotency-Key replays without Redis.
	var ids []string
	for i := range 2 {
		req, err := http.NewRequest("POST", first.edgeURL+"/v1/jobs", strings.NewReader(`{"url":"`+media+"/"+clip+`.ogg"}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+first.key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "single-box-1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var created jobJSON
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		require.Equal(t, i == 1, resp.Header.Get("Idempotent-Replayed") == "true")
		ids = append(ids, created.ID)
	}
	require.Equal(t, ids[0], ids[1])
	stop(first)

	second := start()
	require.NotContains(t, second.log.String(), "migrations applied", "the schema was kept")
	again := client{t: t, base: second.edgeURL, key: first.key} // the first run's key still works
	got := again.get(j.ID)
	require.Equal(t, "succeeded", got.Status)
	code, text2 := again.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=txt", nil)
	require.Equal(t, http.StatusOK, code, string(text2))
	require.Equal(t, string(text), string(text2))
	stop(second)
}
