package connectlimit

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"io"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
)

func gzipped(t *testing.T, src io.Reader) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, err := io.Copy(zw, src)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return &buf
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// decompressor is what Options gives connect-go for gzip.
func decompressor(limit, floor int) *Gzip {
	return &Gzip{limit: int64(limit), floor: int64(min(floor, limit))}
}

// TestGzipStopsAtItsCap: a 1 GiB bomb is given up with resource_exhausted
// once it passes Ratio times its compressed size — not inflated to the end,
// as connect-go's own limit would to count it — while a message that
// inflates modestly reads whole and the decompressor is reused.
func TestGzipStopsAtItsCap(t *testing.T) {
	t.Parallel()
	bomb := gzipped(t, io.LimitReader(zeros{}, 1<<30))
	compressed := int64(bomb.Len())
	z := decompressor(26<<20, 64<<10)
	require.NoError(t, z.Reset(bomb))
	n, err := io.Copy(io.Discard, z)
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "%v", err)
	require.LessOrEqual(t, n, Ratio*compressed+32<<10, "stopped at its cap")
	t.Logf("a %d-byte bomb: %d bytes inflated before the refusal (of 1 GiB)", compressed, n)
	require.NoError(t, z.Close())

	audio := make([]byte, 300<<10)
	_, _ = rand.Read(audio[:200<<10]) // noise, and a stretch of silence
	require.NoError(t, z.Reset(gzipped(t, bytes.NewReader(audio))), "the decompressor is reused")
	got, err := io.ReadAll(z)
	require.NoError(t, err)
	require.Equal(t, audio, got)

	small := decompressor(64<<10, 64<<10)
	require.NoError(t, small.Reset(gzipped(t, io.LimitReader(zeros{}, 64<<10))))
	_, err = io.ReadAll(small)
	require.NoError(t, err, "a message of exactly the limit passes, however well it compresses")
	require.NoError(t, small.Reset(gzipped(t, io.LimitReader(zeros{}, 64<<10+1))))
	_, err = io.ReadAll(small)
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err))
}
