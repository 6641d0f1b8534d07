package blob

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// TestDirServesTheSamePresignedURLContractAsS3: anyone holding the URL reads
// the blob (ranges too) until it expires; a changed key, expiry or signature
// is refused; the URLs outlive a restart (the key is kept in the directory).
func TestDirServesTheSamePresignedURLContractAsS3(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := OpenDir(root, "")
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("GET "+DirPath, d)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	d.DefaultBaseURL(srv.URL)

	body := []byte("RIFF....WAVEfmt audio bytes")
	require.NoError(t, d.Put(ctx, "audio/ab/abc.wav", bytes.NewReader(body), int64(len(body)), "audio/wav"))
	u, err := d.PresignGet(ctx, "audio/ab/abc.wav", time.Minute)
	require.NoError(t, err)

	get := func(u string, header ...string) (int, []byte) {
		req, err := http.NewRequest("GET", u, nil)
		require.NoError(t, err)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, got := get(u)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, body, got)
	code, got = get(u, "Range", "bytes=4-7")
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, body[4:8], got)

	parsed, _ := url.Parse(u)
	q := parsed.Query()
	for name, change := range map[string]func(q url.Values, p *url.URL){
		"other key":        func(q url.Values, p *url.URL) { p.Path = "/blobs/audio/ab/other.wav" },
		"later expiry":     func(q url.Values, p *url.URL) { q.Set("expires", "99999999999") },
		"forged signature": func(q url.Values, p *url.URL) { q.Set("signature", "00"+q.Get("signature")[2:]) },
		"no signature":     func(q url.Values, p *url.URL) { q.Del("signature") },
	} {
		p := *parsed
		qq := url.Values{}
		for k, v := range q {
			qq[k] = append([]string(nil), v...)
		}
		change(qq, &p)
		p.RawQuery = qq.Encode()
		code, _ := get(p.String())
		require.Equal(t, http.StatusForbidden, code, name)
	}
	expired, err := d.PresignGet(ctx, "audio/ab/abc.wav", -time.Second)
	require.NoError(t, err)
	code, _ = get(expired)
	require.Equal(t, http.StatusForbidden, code, "expired")

	// A restart keeps the signing key: the URL handed out before still reads.
	d2, err := OpenDir(root, srv.URL)
	require.NoError(t, err)
	mux2 := http.NewServeMux()
	mux2.Handle("GET "+DirPath, d2)
	rec := httptest.NewRecorder()
	mux2.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
	require.Equal(t, http.StatusOK, rec.Code)

	// The rest of the Store contract.
	keys, err := d.Keys(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"audio/ab/abc.wav"}, keys, "the signing key and temp files are not blobs")
	_, err = d.Open(ctx, "audio/none.wav")
	require.ErrorIs(t, err, job.ErrNotFound)
	for _, bad := range []string{"../escape", "a/../../b", ".presign-key", "/abs"} {
		require.Error(t, d.Put(ctx, bad, bytes.NewReader(nil), 0, ""), bad)
	}
	path := filepath.Join(t.TempDir(), "copy.wav")
	require.NoError(t, d.GetFile(ctx, "audio/ab/abc.wav", path))
	copied, _ := os.ReadFile(path)
	require.Equal(t, body, copied)
	require.NoError(t, d.Delete(ctx, "audio/ab/abc.wav"))
	ok, err := d.Exists(ctx, "audio/ab/abc.wav")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, d.Delete(ctx, "audio/ab/abc.wav"), "deleting twice is fine")
}
