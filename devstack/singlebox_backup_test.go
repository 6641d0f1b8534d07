package devstack

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"
)

// TestSingleBoxOnlineBackupWipeRestore backs up a running single box
// (ytcaption-dev) while jobs are being created and finished, from another
// process (ytcaption-core backup --data-dir), wipes its data directory,
// restores it, and finds the box as it was at the backup: every job that
// had succeeded with its transcript, every blob a row names on disk, none of
// the jobs created after the backup, the jobs in flight then finishing
// after the restart, and new jobs running.
func TestSingleBoxOnlineBackupWipeRestore(t *testing.T) {
	t.Parallel()
	media, refs := mediaServer(t)
	clip := firstClip(refs)
	home := t.TempDir()
	data := filepath.Join(home, "box")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data")}

	type box struct {
		api *client
		cmd *exec.Cmd
		log *lockedBuffer
	}
	start := func() box {
		cmd := exec.Command(goBinary(t, "./cmd/ytcaption-dev"), "--data-dir", data, "--edge-addr", "127.0.0.1:0", "--connect-addr", "127.0.0.1:0",
			"--core-addr", "127.0.0.1:0", "--metrics-addr", "", "--log-format", "json")
		cmd.Env = env
		b := box{cmd: cmd, log: &lockedBuffer{}}
		cmd.Stderr = b.log
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		restAPI, apiKey := regexp.MustCompile(`REST API:\s+(\S+)`), regexp.MustCompile(`API key:\s+(\S+)`)
		var base, key string
		sc := bufio.NewScanner(out)
		for sc.Scan() && (base == "" || key == "") {
			if m := restAPI.FindStringSubmatch(sc.Text()); m != nil {
				base = m[1]
			}
			if m := apiKey.FindStringSubmatch(sc.Text()); m != nil {
				key = m[1]
			}
		}
		require.NotEmpty(t, key, "the box did not start: %s", b.log.String())
		go func() {
			for sc.Scan() {
			}
		}()
		b.api = &client{t: t, base: base, key: key}
		return b
	}
	stop := func(b box) {
		require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, b.cmd.Wait(), b.log.String())
	}
	runCore := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(coreBinary(t), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}

	first := start()
	// Jobs keep coming while the backup runs: one every half second, each
	// for new media (no transcript cache), from a goroutine of its own.
	type creation struct {
		id    string
		asked time.Time // when the POST began
	}
	var mu sync.Mutex
	var created []creation
	var createErr error
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			case <-time.After(500 * time.Millisecond):
			}
			asked := time.Now()
			id, err := createJob(first.api.base, first.api.key, fmt.Sprintf("%s/%s.ogg?n=%d", media, clip, i))
			mu.Lock()
			if err != nil {
				createErr = err
				mu.Unlock()
				return
			}
			created = append(created, creation{id, asked})
			mu.Unlock()
		}
	}()
	// Back up once two jobs have finished and others are in flight.
	succeededBefore := func() []string {
		mu.Lock()
		cs := slices.Clone(created)
		mu.Unlock()
		var done []string
		for _, c := range cs {
			if first.api.get(c.id).Status == "succeeded" {
				done = append(done, c.id)
			}
		}
		return done
	}
	var before []string
	require.Eventually(t, func() bool { before = succeededBefore(); return len(before) >= 2 }, 3*time.Minute, time.Second, "jobs finish")
	transcripts := map[string]string{}
	for _, id := range before {
		code, srt := first.api.do("GET", "/v1/jobs/"+id+"/transcript?format=srt", nil)
		require.Equal(t, http.StatusOK, code)
		transcripts[id] = string(srt)
	}
	dir := filepath.Join(t.TempDir(), "backup")
	require.Contains(t, runCore("backup", "--data-dir", data, "--out", dir), "(the box was running)")
	backedUp := time.Now()
	// A few more jobs after the backup: they are not in it. (One asked for
	// while the backup ran may or may not be.)
	var after []string
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		after = after[:0]
		for _, c := range created {
			if c.asked.After(backedUp) {
				after = append(after, c.id)
			}
		}
		return len(after) >= 3 || createErr != nil
	}, time.Minute, 100*time.Millisecond)
	close(quit)
	<-done
	require.NoError(t, createErr)
	stop(first)

	// Disaster: the data directory is gone.
	require.NoError(t, os.RemoveAll(data))
	require.Contains(t, runCore("restore", "--data-dir", data, "--from", dir), "restored the backup")

	// Before the box starts again: the restored database and blobs agree.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ytcaption.db")+"?mode=ro")
	require.NoError(t, err)
	rows, err := db.Query(`SELECT id, status, audio_key FROM jobs WHERE parent_id IS NULL`)
	require.NoError(t, err)
	restored := map[string]string{}
	var missing []string
	for rows.Next() {
		var id, status, key string
		require.NoError(t, rows.Scan(&id, &status, &key))
		restored[id] = status
		if key != "" {
			if _, err := os.Stat(filepath.Join(data, "blobs", filepath.FromSlash(key))); err != nil {
				missing = append(missing, key)
			}
		}
	}
	require.NoError(t, rows.Err())
	var uploadKeys []string
	ur, err := db.Query(`SELECT blob_key FROM uploads WHERE blob_key <> ''`)
	require.NoError(t, err)
	for ur.Next() {
		var key string
		require.NoError(t, ur.Scan(&key))
		uploadKeys = append(uploadKeys, key)
	}
	require.NoError(t, ur.Err())
	for _, key := range uploadKeys {
		if _, err := os.Stat(filepath.Join(data, "blobs", filepath.FromSlash(key))); err != nil {
			missing = append(missing, key)
		}
	}
	var segmentless int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM jobs j WHERE j.status = 'succeeded' AND j.parent_id IS NULL
		AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.job_id = j.id)`).Scan(&segmentless))
	require.NoError(t, db.Close())
	require.Empty(t, missing, "every blob a restored row names is there")
	require.Zero(t, segmentless, "every restored succeeded job has its transcript")
	for _, id := range before {
		require.Equal(t, "succeeded", restored[id], "a job that had succeeded before the backup is in it")
	}
	for _, id := range after {
		require.NotContains(t, restored, id, "a job created after the backup is not in it")
	}
	inFlight := 0
	for _, status := range restored {
		if status != "succeeded" {
			inFlight++
		}
	}
	t.Logf("backup: %d jobs (%d succeeded before it began, %d not finished in the snapshot), %d created after it",
		len(restored), len(before), inFlight, len(after))

	second := start()
	for _, id := range before {
		code, srt := second.api.do("GET", "/v1/jobs/"+id+"/transcript?format=srt", nil)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, transcripts[id], string(srt), "the transcript is back")
	}
	// Every job of the backup finishes, those in flight in it too. The box
	// works through them a few at a time, and how many there are grows on a
	// slow machine (jobs keep coming until two have finished): so what fails
	// the test is a stall — 3 minutes without one finishing — not a total.
	pending := maps.Clone(restored)
	progressed := time.Now()
	for len(pending) > 0 {
		for id := range pending {
			if j := second.api.get(id); terminal(j) {
				require.Equal(t, "succeeded", j.Status, "every job of the backup finishes: %+v", j.Error)
				delete(pending, id)
				progressed = time.Now()
			}
		}
		if len(pending) > 0 && time.Since(progressed) > 3*time.Minute {
			t.Fatalf("%d jobs of the backup have not finished, and none did in the last 3 minutes", len(pending))
		}
		time.Sleep(time.Second)
	}
	j := second.api.waitFor(second.api.create(fmt.Sprintf("%s/%s.ogg?n=new", media, clip)).ID, 3*time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status, "new jobs run")
	stop(second)
}

// createJob creates a job as a client would, from any goroutine.
func createJob(base, key, url string) (string, error) {
	b, _ := json.Marshal(map[string]string{"url": url, "language": "en"})
	req, err := http.NewRequest(http.MethodPost, base+"/v1/jobs", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var j jobJSON
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("create job: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return "", err
	}
	return j.ID, nil
}
