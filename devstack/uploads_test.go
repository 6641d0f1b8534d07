package devstack

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/wav"
	"github.com/ytcaption/ytcaption/internal/wer"
)

// padding is how much silence-free filler the big upload carries: a RIFF
// JUNK chunk, which decoders skip, so the file is ≥ 300 MB yet holds one
// LibriVox clip of speech and transcribes in seconds.
const padding = 300 << 20

// paddedWAV writes the LibriVox clip id as a WAV with a JUNK chunk of
// padding bytes between its format and its samples.
func paddedWAV(t *testing.T, id, path string) int64 {
	t.Helper()
	src, err := os.Open(filepath.Join(librivox, id+".wav"))
	require.NoError(t, err)
	defer src.Close()
	start, n, err := wav.FindData(src)
	require.NoError(t, err)
	pcm := make([]byte, n)
	_, err = src.ReadAt(pcm, start)
	require.NoError(t, err)

	out, err := os.Create(path)
	require.NoError(t, err)
	defer out.Close()
	w := bufio.NewWriterSize(out, 1<<20)
	h := wav.Header(n) // RIFF, fmt (16 kHz mono 16-bit), data header
	binary.LittleEndian.PutUint32(h[4:], uint32(36+8+padding+n))
	_, _ = w.Write(h[:36]) // up to the end of fmt
	_, _ = w.WriteString("JUNK")
	_ = binary.Write(w, binary.LittleEndian, uint32(padding))
	filler := bytes.Repeat([]byte("ytcaption tus padding "), 1<<12)
	for left := padding; left > 0; {
		k := min(left, len(filler))
		_, _ = w.Write(filler[:k])
		left -= k
	}
	_, _ = w.Write(h[36:]) // "data" and its size
	_, _ = w.Write(pcm)
	require.NoError(t, w.Flush())
	st, err := out.Stat()
	require.NoError(t, err)
	return st.Size()
}

// rssBytes is this process's resident memory (VmRSS).
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestResumableUploadThroughTusJsClient: tus-js-client (from npm, the
// reference client) uploads a 300 MB file through the edge, the connection
// cut twice and the upload resumed each time from the offset the server
// reports; the finished upload becomes a job that transcribes the speech in
// it. The dev stack runs edge and core in this process, so its resident
// memory during the upload bounds the edge's growth from above; it is
// printed beside idle.
func TestResumableUploadThroughTusJsClient(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 300 MB")
	}
	tusDir, err := filepath.Abs("testdata/tusclient")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(tusDir, "node_modules", "tus-js-client")); err != nil {
		t.Fatalf("tus-js-client is not installed: run `make deps` (npm ci in %s)", tusDir)
	}
	_, refs := mediaServer(t)
	ids := make([]string, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	clip := ids[0]
	file := filepath.Join(t.TempDir(), "lecture.wav")
	size := paddedWAV(t, clip, file)
	require.GreaterOrEqual(t, size, int64(300<<20))

	ytdlp, _ := fakeYtDlp(t)
	ts := startStack(t, ytdlp)
	api := client{t: t, base: ts.EdgeURL, key: ts.APIKey}

	// A size over the deployment's maximum is refused before any byte.
	req, err := http.NewRequest(http.MethodPost, ts.EdgeURL+"/v1/uploads", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+ts.APIKey)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(5<<30, 10))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
	require.Equal(t, "request_too_large", errorCode(t, b))

	// Resident memory: idle, then sampled through the upload.
	idle := rssBytes(t)
	var peak atomic.Int64
	peak.Store(idle)
	stop := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if r := rssBytes(t); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	})
	start := time.Now()
	cmd := exec.Command("node", "upload.mjs", ts.EdgeURL+"/v1/uploads", ts.APIKey, file, "lecture.wav")
	cmd.Dir = tusDir
	out, err := cmd.Output()
	close(stop)
	sampling.Wait()
	var stderr []byte
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	require.NoError(t, err, "%s", stderr)
	took := time.Since(start)

	var res struct {
		URL    string
		Size   int64
		Events []struct {
			CutAtSent *int64 `json:"cut_at_sent"`
			ResumedAt *int64 `json:"resumed_at"`
		}
	}
	require.NoError(t, json.Unmarshal(out, &res), string(out))
	t.Logf("uploaded %d MB in %s; events %s", size>>20, took.Round(time.Millisecond), strings.TrimSpace(string(out)))
	growth := peak.Load() - idle
	t.Logf("resident memory of the process (edge, core and gpu-node): idle %d MB, peak during the upload %d MB, growth %d MB",
		idle>>20, peak.Load()>>20, growth>>20)
	require.Equal(t, size, res.Size)
	require.True(t, strings.HasPrefix(res.URL, ts.EdgeURL+"/v1/uploads/"), "the client saw the edge's URL: %s", res.URL)
	var cuts, resumes []int64
	for _, e := range res.Events {
		if e.CutAtSent != nil {
			cuts = append(cuts, *e.CutAtSent)
		}
		if e.ResumedAt != nil {
			resumes = append(resumes, *e.ResumedAt)
		}
	}
	require.Len(t, cuts, 2, "cut twice")
	require.Len(t, resumes, 2, "resumed twice, each after asking the server its offset")
	require.Positive(t, resumes[0], "the first resume continued, not restarted")
	require.Greater(t, resumes[1], resumes[0], "the second resume continued from further on")
	// A regression guard, not a benchmark: an edge (or core) holding the
	// whole 300 MB body would grow by more than this.
	require.Less(t, growth, int64(3*64<<20), "resident memory grew by %d MB during the upload", growth>>20)

	// The finished upload becomes a job, and the speech in it is transcribed.
	id := res.URL[strings.LastIndex(res.URL, "/")+1:]
	code, body := api.do("POST", "/v1/jobs", map[string]string{"upload_id": id, "language": "en"})
	require.Equal(t, http.StatusAccepted, code, string(body))
	var j jobJSON
	require.NoError(t, json.Unmarshal(body, &j))
	require.Equal(t, "upload:lecture.wav", j.URL)
	j = api.waitFor(j.ID, 3*time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status, "%+v", j.Error)
	code, text := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=txt", nil)
	require.Equal(t, http.StatusOK, code, string(text))
	rate := wer.Rate(refs[clip], string(text))
	t.Logf("clip %s: %.1f s of speech after %d MB of padding; WER %.2f", clip, j.Media.DurationSeconds, padding>>20, rate)
	require.Less(t, rate, 0.5, "transcript %q", text)
}
