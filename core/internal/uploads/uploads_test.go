package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
)

func TestCleanFilename(t *testing.T) {
	t.Parallel()
	long := string(bytes.Repeat([]byte("é"), 200)) // 400 bytes
	for in, want := range map[string]string{
		"lecture.m4a":               "lecture.m4a",
		"../../etc/passwd":          "passwd",
		`C:\Users\a\talk.mp3`:       "talk.mp3",
		"a\x00b\nc\u202e.wav":       "abc.wav",
		"  spaced.ogg  ":            "spaced.ogg",
		"..":                        "",
		"bad\xffutf8.wav":           "badutf8.wav",
		long:                        long[:254], // whole runes within 255 bytes
		"dir/":                      "",
		"\u200bzero-width.flac":     "zero-width.flac",
		"name with spaces & ü.opus": "name with spaces & ü.opus",
	} {
		require.Equal(t, want, CleanFilename(in), "%q", in)
	}
}

// stage records an upload of data's size with its first n bytes staged as
// a PATCH would leave them: whole parts, then the rest as the tail.
func stage(t *testing.T, s *Service, user string, data []byte, n int, expires time.Time) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	_, err := s.store.CreateUpload(ctx, store.Upload{ID: id, UserID: user, Size: int64(len(data)), ExpiresAt: expires})
	require.NoError(t, err)
	h := sha256.New()
	h.Write(data[:n])
	for off := 0; off < n; off += partSize {
		end := min(off+partSize, n)
		key := partKey(id, int64(off/partSize+1))
		if end-off < partSize && end < len(data) {
			key = tailKey(id, int64(n))
		}
		require.NoError(t, s.blobs.Put(ctx, key, bytes.NewReader(data[off:end]), int64(end-off), ""))
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, s.store.SetUploadProgress(ctx, id, 0, int64(n), state))
	return id
}

// stagedKeys lists what is left under an upload's staging prefix.
func stagedKeys(t *testing.T, blobs blob.Store, id string) []string {
	t.Helper()
	keys, err := blobs.Keys(context.Background())
	require.NoError(t, err)
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, stagingPrefix(id)) {
			out = append(out, k)
		}
	}
	return out
}

// TestSweepRemovesExpiredUploads: an expired unfinished upload loses its
// staged bytes and its row; an expired finished one its blob — unless a job
// holds the same content — and its row; a live one stays.
func TestSweepRemovesExpiredUploads(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		ctx := context.Background()
		blobs, err := blob.OpenDir(t.TempDir(), "http://127.0.0.1:1")
		require.NoError(t, err)
		s, err := New(slog.New(slog.DiscardHandler), Config{Dir: t.TempDir(), ServiceToken: "t"}, env.Store, blobs)
		require.NoError(t, err)
		now := time.Now()

		unfinished := stage(t, s, env.User.ID, []byte("abc"), 2, now.Add(-time.Minute))
		live := stage(t, s, env.User.ID, []byte("abc"), 2, now.Add(time.Hour))
		finished := stage(t, s, env.User.ID, []byte("abc"), 3, now.Add(-time.Minute))
		u, err := env.Store.GetUpload(ctx, env.User.ID, finished)
		require.NoError(t, err)
		require.NoError(t, s.finish(ctx, u))
		u, err = env.Store.GetUpload(ctx, env.User.ID, finished)
		require.NoError(t, err)
		ok, err := blobs.Exists(ctx, u.BlobKey)
		require.NoError(t, err)
		require.True(t, ok, "finishing stores the file under its content key")
		require.Empty(t, stagedKeys(t, blobs, finished), "and drops its parts")

		n, err := s.Sweep(ctx, now)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		for _, id := range []string{unfinished, finished} {
			_, err = env.Store.GetUpload(ctx, env.User.ID, id)
			require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		}
		require.Empty(t, stagedKeys(t, blobs, unfinished), "staged bytes removed")
		require.NotEmpty(t, stagedKeys(t, blobs, live), "a live upload keeps its bytes")
		_, err = env.Store.GetUpload(ctx, env.User.ID, live)
		require.NoError(t, err)
		ok, err = blobs.Exists(ctx, u.BlobKey)
		require.NoError(t, err)
		require.False(t, ok, "a finished upload no job took is deleted")
	})
}

// TestHeadFinishesAWholeUploadThatWasNotStored: when storing a complete
// upload failed, the client's HEAD (which would see the full offset and
// stop) stores it first, so a job can be made of it.
func TestHeadFinishesAWholeUploadThatWasNotStored(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		ctx := context.Background()
		blobs, err := blob.OpenDir(t.TempDir(), "http://127.0.0.1:1")
		require.NoError(t, err)
		s, err := New(slog.New(slog.DiscardHandler), Config{Dir: t.TempDir(), ServiceToken: "t"}, env.Store, blobs)
		require.NoError(t, err)
		id := stage(t, s, env.User.ID, []byte("abc"), 3, time.Now().Add(time.Hour))

		req := httptest.NewRequest(http.MethodHead, Path+"/"+id, nil)
		req.Header.Set("Authorization", "Bearer t")
		req.Header.Set(svcauth.UserHeader, env.User.ID)
		req.Header.Set("Tus-Resumable", "1.0.0")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "3", rec.Header().Get("Upload-Offset"))
		u, err := env.Store.GetUpload(ctx, env.User.ID, id)
		require.NoError(t, err)
		require.True(t, u.Finished(), "stored on the HEAD")
		sum := sha256.Sum256([]byte("abc"))
		require.Equal(t, blob.ContentKey("uploads", sum[:], ""), u.BlobKey)
		ok, err := blobs.Exists(ctx, u.BlobKey)
		require.NoError(t, err)
		require.True(t, ok)
		require.Empty(t, stagedKeys(t, blobs, id), "the staged parts are dropped")
	})
}

// TestUnfinishedUploadsAreBoundedPerUser: the sizes a user's unfinished
// uploads declared count against MaxOpenBytes before another is accepted.
func TestUnfinishedUploadsAreBoundedPerUser(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		blobs, err := blob.OpenDir(t.TempDir(), "http://127.0.0.1:1")
		require.NoError(t, err)
		s, err := New(slog.New(slog.DiscardHandler), Config{Dir: t.TempDir(), ServiceToken: "t", MaxSize: 100, MaxOpenBytes: 150}, env.Store, blobs)
		require.NoError(t, err)
		create := func(n int) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, Path, nil)
			req.Header.Set("Authorization", "Bearer t")
			req.Header.Set(svcauth.UserHeader, env.User.ID)
			req.Header.Set("Tus-Resumable", "1.0.0")
			req.Header.Set("Upload-Length", strconv.Itoa(n))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			return rec
		}
		require.Equal(t, http.StatusCreated, create(100).Code)
		require.Equal(t, http.StatusCreated, create(50).Code)
		rec := create(1)
		require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
		require.Contains(t, rec.Body.String(), `"code":"quota_exceeded"`)
	})
}
