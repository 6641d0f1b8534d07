package uploads

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
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

		stage := func(expires time.Time) string {
			id := uuid.NewString()
			_, err := env.Store.CreateUpload(ctx, store.Upload{ID: id, UserID: env.User.ID, Size: 3, ExpiresAt: expires})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(s.cfg.Dir, id), []byte("abc"), 0o600))
			require.NoError(t, os.WriteFile(filepath.Join(s.cfg.Dir, id+".info"), []byte("{}"), 0o600))
			return id
		}
		unfinished := stage(now.Add(-time.Minute))
		live := stage(now.Add(time.Hour))
		finished := stage(now.Add(-time.Minute))
		require.NoError(t, s.finish(ctx, finished))
		u, err := env.Store.GetUpload(ctx, env.User.ID, finished)
		require.NoError(t, err)
		ok, err := blobs.Exists(ctx, u.BlobKey)
		require.NoError(t, err)
		require.True(t, ok, "finishing stores the file under its content key")

		n, err := s.Sweep(ctx, now)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		for _, id := range []string{unfinished, finished} {
			_, err = env.Store.GetUpload(ctx, env.User.ID, id)
			require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		}
		_, err = os.Stat(filepath.Join(s.cfg.Dir, unfinished))
		require.ErrorIs(t, err, os.ErrNotExist, "staged bytes removed")
		_, err = os.Stat(filepath.Join(s.cfg.Dir, live))
		require.NoError(t, err, "a live upload keeps its bytes")
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
		id := uuid.NewString()
		_, err = env.Store.CreateUpload(ctx, store.Upload{ID: id, UserID: env.User.ID, Size: 3, ExpiresAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(s.cfg.Dir, id), []byte("abc"), 0o600))

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
		ok, err := blobs.Exists(ctx, u.BlobKey)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = os.Stat(filepath.Join(s.cfg.Dir, id))
		require.ErrorIs(t, err, os.ErrNotExist, "the staged copy is dropped")
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
