package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/miniotest"
)

// TestBlobStoreOnRealMinIO runs every operation against one real MinIO server.
func TestBlobStoreOnRealMinIO(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	cfg := Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: "ytcaption-test"}
	ctx := context.Background()

	// Replicas start together: both must come up on the same new bucket.
	var wg sync.WaitGroup
	stores := make([]*S3, 2)
	errs := make([]error, 2)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = New(ctx, cfg) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	s := stores[0]
	require.NoError(t, s.Ping(ctx))

	t.Run("round trip", func(t *testing.T) {
		data := []byte("RIFF....WAVEfmt audio bytes")
		require.NoError(t, s.Put(ctx, "a/b.wav", bytes.NewReader(data), int64(len(data)), "audio/wav"))
		ok, err := s.Exists(ctx, "a/b.wav")
		require.NoError(t, err)
		require.True(t, ok)
		r, err := s.Open(ctx, "a/b.wav")
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		require.Equal(t, data, got)
		require.NoError(t, s.Delete(ctx, "a/b.wav"))
		require.NoError(t, s.Delete(ctx, "a/b.wav"), "deleting twice is fine")
		ok, err = s.Exists(ctx, "a/b.wav")
		require.NoError(t, err)
		require.False(t, ok)
		_, err = s.Open(ctx, "a/b.wav")
		require.ErrorIs(t, err, job.ErrNotFound)
	})

	t.Run("put file, content key and presigned URL", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audio.wav")
		data := bytes.Repeat([]byte("pcm"), 1000)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		sum, err := HashFile(path)
		require.NoError(t, err)
		want := sha256.Sum256(data)
		require.Equal(t, want[:], sum)
		key := ContentKey("audio", sum, ".wav")
		require.Regexp(t, `^audio/[0-9a-f]{2}/[0-9a-f]{64}\.wav$`, key)
		require.Equal(t, key[6:8], key[9:11], "fan-out is the hash's first two characters")
		require.NoError(t, s.PutFile(ctx, key, path, "audio/wav"))

		u, err := s.PresignGet(ctx, key, time.Second)
		require.NoError(t, err)
		resp, err := http.Get(u)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, data, body, "no credentials needed")
		require.Eventually(t, func() bool {
			resp, err := http.Get(u)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusForbidden
		}, 10*time.Second, 100*time.Millisecond, "the URL expires")
	})

	t.Run("stop leaves no process", func(t *testing.T) {
		other := miniotest.Start(t)
		pid := other.Pid()
		require.NoError(t, other.Stop())
		require.Error(t, syscall.Kill(pid, 0), "minio %d still running", pid)
	})
}
