package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
)

// replica is one core's upload endpoint, over a store and a blob store that
// other replicas share.
type replica struct {
	t    *testing.T
	srv  *httptest.Server
	user string
}

func newReplica(t *testing.T, st *store.Store, blobs blob.Store, user string) replica {
	s, err := New(slog.New(slog.DiscardHandler), Config{Dir: t.TempDir(), ServiceToken: "t"}, st, blobs)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return replica{t: t, srv: srv, user: user}
}

func (r replica) do(method, path string, body io.Reader, header ...string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, body)
	require.NoError(r.t, err)
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set(svcauth.UserHeader, r.user)
	req.Header.Set("Tus-Resumable", "1.0.0")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (r replica) patch(id string, offset int, data []byte) *http.Response {
	return r.do(http.MethodPatch, Path+"/"+id, bytes.NewReader(data),
		"Upload-Offset", strconv.Itoa(offset), "Content-Type", "application/offset+octet-stream")
}

func (r replica) offset(id string) int {
	resp := r.do(http.MethodHead, Path+"/"+id, nil)
	require.Equal(r.t, http.StatusOK, resp.StatusCode)
	n, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	require.NoError(r.t, err)
	return n
}

// cut sends a PATCH announcing all of data, writes only its first n bytes
// and drops the connection, as a client losing its network does.
func (r replica) cut(id string, offset int, data []byte, n int) {
	r.t.Helper()
	u, err := url.Parse(r.srv.URL)
	require.NoError(r.t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(r.t, err)
	fmt.Fprintf(conn, "PATCH %s/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer t\r\n%s: %s\r\nTus-Resumable: 1.0.0\r\n"+
		"Upload-Offset: %d\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n",
		Path, id, u.Host, svcauth.UserHeader, r.user, offset, len(data))
	_, err = conn.Write(data[:n])
	require.NoError(r.t, err)
	require.NoError(r.t, conn.Close())
}

// TestStagedUploadsSurviveCutsOnAnyReplica: one upload's requests go to two
// replicas that share only the database and the blob store; one PATCH is cut
// mid-part. Every byte that reached a replica is kept (the offset after the
// cut is exactly what was sent), the upload resumes on the other replica,
// and the finished file is the original under its content key, its staged
// parts gone. Run on PostgreSQL and SQLite, over MinIO and a directory.
func TestStagedUploadsSurviveCutsOnAnyReplica(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		for _, kind := range []string{"minio", "dir"} {
			t.Run(kind, func(t *testing.T) {
				t.Parallel()
				env := open(t)
				var blobs blob.Store
				if kind == "minio" {
					srv := miniotest.Start(t)
					s3, err := blob.New(context.Background(), blob.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: "uploads"})
					require.NoError(t, err)
					blobs = s3
				} else {
					d, err := blob.OpenDir(t.TempDir(), "http://127.0.0.1:1")
					require.NoError(t, err)
					blobs = d
				}
				a := newReplica(t, env.Store, blobs, env.User.ID)
				b := newReplica(t, env.Store, blobs, env.User.ID)

				data := make([]byte, 2*partSize+1234567)
				rng := rand.NewChaCha8([32]byte{7})
				_, _ = rng.Read(data)
				resp := a.do(http.MethodPost, Path, nil, "Upload-Length", strconv.Itoa(len(data)))
				require.Equal(t, http.StatusCreated, resp.StatusCode)
				loc, err := url.Parse(resp.Header.Get("Location"))
				require.NoError(t, err)
				id := loc.Path[len(Path)+1:]

				// 3 MiB: a tail only.
				resp = a.patch(id, 0, data[:3<<20])
				require.Equal(t, http.StatusNoContent, resp.StatusCode)
				require.Equal(t, 3<<20, b.offset(id), "the other replica sees the staged tail")

				// Cut at 10 MiB, on the other replica: the first part (tail +
				// 5 MiB) and a new 2 MiB tail are kept. The HEAD waits for the
				// cut PATCH's lock, so poll only until that request has begun.
				b.cut(id, 3<<20, data[3<<20:], 7<<20)
				deadline := time.Now().Add(30 * time.Second)
				for a.offset(id) != 10<<20 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				require.Equal(t, 10<<20, a.offset(id), "every byte that arrived before the cut is kept")

				resp = b.patch(id, 3<<20, data[3<<20:4<<20])
				require.Equal(t, http.StatusConflict, resp.StatusCode, "an offset behind the upload's is refused")

				resp = a.patch(id, 10<<20, data[10<<20:])
				require.Equal(t, http.StatusNoContent, resp.StatusCode)
				require.Equal(t, strconv.Itoa(len(data)), resp.Header.Get("Upload-Offset"))

				u, err := env.Store.GetUpload(context.Background(), env.User.ID, id)
				require.NoError(t, err)
				require.True(t, u.Finished())
				sum := sha256.Sum256(data)
				require.Equal(t, blob.ContentKey("uploads", sum[:], ""), u.BlobKey, "keyed by the content's SHA-256, hashed across three requests on two replicas")
				r, err := blobs.Open(context.Background(), u.BlobKey)
				require.NoError(t, err)
				got, err := io.ReadAll(r)
				r.Close()
				require.NoError(t, err)
				require.True(t, bytes.Equal(data, got), "the file is the original")
				require.Empty(t, stagedKeys(t, blobs, id), "staged parts are dropped once the file is whole")
			})
		}
	})
}

// TestACrashedWritersLeftoversAreOverwritten: a PATCH that died after
// putting a part or a tail but before recording it leaves blobs the row does
// not name. The client resumes from the recorded offset, its bytes land on
// the same part key, and a stray tail is keyed by another offset, so the
// file comes out right and the leftovers go with the staging prefix.
func TestACrashedWritersLeftoversAreOverwritten(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		ctx := context.Background()
		blobs, err := blob.OpenDir(t.TempDir(), "http://127.0.0.1:1")
		require.NoError(t, err)
		s, err := New(slog.New(slog.DiscardHandler), Config{Dir: t.TempDir(), ServiceToken: "t"}, env.Store, blobs)
		require.NoError(t, err)
		data := make([]byte, partSize+100)
		_, _ = rand.NewChaCha8([32]byte{9}).Read(data)
		id := stage(t, s, env.User.ID, data, 3<<20, time.Now().Add(time.Hour))
		junk := bytes.Repeat([]byte("x"), partSize)
		require.NoError(t, blobs.Put(ctx, partKey(id, 1), bytes.NewReader(junk), int64(len(junk)), ""))
		require.NoError(t, blobs.Put(ctx, tailKey(id, 5<<20), bytes.NewReader(junk[:2<<20]), 2<<20, ""))

		r := replica{t: t, srv: httptest.NewServer(s), user: env.User.ID}
		t.Cleanup(r.srv.Close)
		require.Equal(t, 3<<20, r.offset(id), "the recorded offset, not the leftovers'")
		resp := r.patch(id, 3<<20, data[3<<20:])
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		u, err := env.Store.GetUpload(ctx, env.User.ID, id)
		require.NoError(t, err)
		rc, err := blobs.Open(ctx, u.BlobKey)
		require.NoError(t, err)
		got, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got), "the file is the client's bytes, not the crashed writer's")
		require.Empty(t, stagedKeys(t, blobs, id))
	})
}
