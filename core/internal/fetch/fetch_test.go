package fetch

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/media"
	"github.com/ytcaption/ytcaption/core/internal/safehttp"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/wav"
)

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-nostdin", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	require.NoError(t, err, string(out))
}

// lyingMKV writes a Matroska file of seconds of audio whose Segment Info
// Duration (ID 0x4489, an 8-byte float of milliseconds) is patched to 1 s.
func lyingMKV(t *testing.T, path string, seconds int) {
	t.Helper()
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration="+strconv.Itoa(seconds), "-c:a", "libvorbis", "-f", "matroska", path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.Index(b, []byte{0x44, 0x89, 0x88})
	require.GreaterOrEqual(t, i, 0, "no 8-byte Duration element")
	binary.BigEndian.PutUint64(b[i+3:], math.Float64bits(1000))
	if j := bytes.Index(b, []byte("00:0")); j >= 0 && j+18 <= len(b) { // the track's DURATION tag
		copy(b[j:], "00:00:01.000000000")
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// stage is a download stage with only what fetch needs: the real media
// tool, a loopback-allowing client and a directory blob store.
func stage(t *testing.T, maxDuration, chunkLength time.Duration) (*Stage, *blob.Dir) {
	t.Helper()
	blobs, err := blob.OpenDir(t.TempDir(), "")
	require.NoError(t, err)
	return New(slog.New(slog.DiscardHandler), Config{MaxDuration: maxDuration, ChunkLength: chunkLength, WorkDir: t.TempDir()}, Deps{
		Blobs: blobs,
		Media: media.New(media.Config{}),
		HTTP:  safehttp.NewClient(safehttp.Config{Policy: egress.Policy{AllowPrivate: true}}),
		Blob:  breaker.New(nil, "blob", breaker.Config{}),
	}), blobs
}

func serveFiles(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLyingContainerFailsTooLongAndIsRecordedByItsSamples: the issue's
// case through the download stage. A Matroska file that claims 1 s and holds
// 150 s fails too_long under a 60 s limit (and nothing is stored); under a
// 300 s limit the recorded duration is 150 s, and chunking cuts by it.
func TestLyingContainerFailsTooLongAndIsRecordedByItsSamples(t *testing.T) {
	t.Parallel()
	files := t.TempDir()
	lyingMKV(t, filepath.Join(files, "lying.mkv"), 150)
	u := serveFiles(t, files) + "/lying.mkv"
	j := job.Job{ID: "job-1", SourceKind: job.SourceHTTP, URL: u, CanonicalURL: u}

	s, blobs := stage(t, 60*time.Second, 0)
	_, _, err := s.fetch(context.Background(), j)
	require.Equal(t, job.CodeTooLong, job.CodeOf(err), "%v", err)
	keys, kerr := blobs.Keys(context.Background())
	require.NoError(t, kerr)
	require.Empty(t, keys, "audio over the limit is not stored")
	left, _ := os.ReadDir(s.cfg.WorkDir)
	require.Empty(t, left, "the work directory is cleaned up")

	s, blobs = stage(t, 300*time.Second, 60*time.Second)
	m, chunks, err := s.fetch(context.Background(), j)
	require.NoError(t, err)
	require.InDelta(t, 150.0, m.Duration.Seconds(), 0.1, "store.Media.Duration is the decoded length, not the claimed 1 s")
	stored := filepath.Join(t.TempDir(), "stored.wav")
	require.NoError(t, blobs.GetFile(context.Background(), m.AudioKey, stored))
	d, err := wav.Duration(stored)
	require.NoError(t, err)
	require.Equal(t, m.Duration, d, "the recorded length is the stored WAV's")
	require.Len(t, chunks, 3, "chunked by the decoded length: 150 s in chunks of at most 60 s")
	var total int64
	for _, c := range chunks {
		require.LessOrEqual(t, c.Duration, int64(60_000))
		total += c.Duration
	}
	require.Equal(t, m.Duration.Milliseconds(), total)
}

// TestClaimOverTheLimitRefusesEarly: a container that already says it is
// too long is refused on its word, before any decoding.
func TestClaimOverTheLimitRefusesEarly(t *testing.T) {
	t.Parallel()
	files := t.TempDir()
	ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=90", "-c:a", "libvorbis", filepath.Join(files, "long.ogg"))
	u := serveFiles(t, files) + "/long.ogg"
	s, _ := stage(t, 60*time.Second, 0)
	_, _, err := s.fetch(context.Background(), job.Job{ID: "job-2", SourceKind: job.SourceHTTP, URL: u, CanonicalURL: u})
	require.Equal(t, job.CodeTooLong, job.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "says it lasts 1m30s")
}

// TestPlaylistDownloadIsNotMedia: an HLS playlist naming a local file,
// downloaded under an innocent name, fails not_media in the stage.
func TestPlaylistDownloadIsNotMedia(t *testing.T) {
	t.Parallel()
	files := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret.ts")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=3", "-c:a", "mp2", "-f", "mpegts", secret)
	playlist := "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\nfile://" + secret + "\n#EXT-X-ENDLIST\n"
	require.NoError(t, os.WriteFile(filepath.Join(files, "innocent.bin"), []byte(playlist), 0o644))
	u := serveFiles(t, files) + "/innocent.bin"
	s, blobs := stage(t, time.Hour, 0)
	_, _, err := s.fetch(context.Background(), job.Job{ID: "job-3", SourceKind: job.SourceHTTP, URL: u, CanonicalURL: u})
	require.Equal(t, job.CodeNotMedia, job.CodeOf(err), "%v", err)
	keys, _ := blobs.Keys(context.Background())
	require.Empty(t, keys)
}
