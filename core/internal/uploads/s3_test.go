package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	tusd "github.com/tus/tusd/v2/pkg/handler"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
)

// replicas are two uploads services sharing one PostgreSQL database and
// one MinIO bucket, each behind its own HTTP server, as two core replicas
// behind the edge.
type replicas struct {
	env   storetest.Env
	blobs blob.Store
	svc   [2]*Service
	url   [2]string
}

func startReplicas(t *testing.T) replicas {
	t.Helper()
	minio := miniotest.Start(t)
	env := storetest.New(t, storetest.Drivers[0]) // PostgreSQL: replicas share it
	cfg := S3Config{Endpoint: minio.Endpoint, AccessKey: minio.AccessKey, SecretKey: minio.SecretKey, Bucket: "ytcaption"}
	blobs, err := blob.New(context.Background(), blob.Config{Endpoint: cfg.Endpoint, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Bucket: cfg.Bucket})
	require.NoError(t, err)
	r := replicas{env: env, blobs: blobs}
	for i := range r.svc {
		// Each replica has its own store over the shared database, and
		// its own disk.
		s, err := New(slog.New(slog.DiscardHandler), Config{Dir: t.TempDir(), S3: cfg, ServiceToken: "t"}, store.New(env.DB), env.DB, blobs)
		require.NoError(t, err)
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		r.svc[i], r.url[i] = s, srv.URL
	}
	return r
}

func (r replicas) do(t *testing.T, replica int, method, p string, offset int64, body []byte, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, r.url[replica]+p, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer t")
	req.Header.Set(svcauth.UserHeader, r.env.User.ID)
	req.Header.Set("Tus-Resumable", "1.0.0")
	if method == http.MethodPatch {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// tusKeys lists what the bucket holds under Prefix for id.
func tusKeys(t *testing.T, blobs blob.Store, id string) []string {
	t.Helper()
	keys, err := blobs.Keys(context.Background())
	require.NoError(t, err)
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, Prefix+id) {
			out = append(out, k)
		}
	}
	return out
}

// TestS3UploadResumesOnAnotherReplica: an upload begun on one replica is
// resumed on the other (HEAD, PATCH) and finished there; its content key
// holds the file's bytes and the tus objects are gone.
func TestS3UploadResumesOnAnotherReplica(t *testing.T) {
	t.Parallel()
	r := startReplicas(t)
	ctx := context.Background()
	// Past s3store's 5 MiB minimum part, and the first PATCH short of it:
	// its bytes wait in a .part object that the other replica must find.
	data := make([]byte, 11<<20+7)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	half := int64(3 << 20)

	res := r.do(t, 0, http.MethodPost, Path, 0, nil, "Upload-Length", strconv.Itoa(len(data)), "Upload-Metadata", "filename bGVjdHVyZS53YXY=")
	require.Equal(t, http.StatusCreated, res.StatusCode)
	id := path.Base(res.Header.Get("Location"))
	_, err := uuid.Parse(id)
	require.NoError(t, err, "the upload is named by its row's id, not s3store's <object>+<multipart id>: %s", id)

	res = r.do(t, 0, http.MethodPatch, Path+"/"+id, 0, data[:half])
	require.Equal(t, http.StatusNoContent, res.StatusCode)

	res = r.do(t, 1, http.MethodHead, Path+"/"+id, 0, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, strconv.FormatInt(half, 10), res.Header.Get("Upload-Offset"), "the other replica sees what the first took")
	res = r.do(t, 1, http.MethodPatch, Path+"/"+id, half, data[half:])
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, strconv.Itoa(len(data)), res.Header.Get("Upload-Offset"))

	u, err := r.env.Store.GetUpload(ctx, r.env.User.ID, id)
	require.NoError(t, err)
	require.True(t, u.Finished())
	sum := sha256.Sum256(data)
	require.Equal(t, blob.ContentKey("uploads", sum[:], ""), u.BlobKey)
	f, err := r.blobs.Open(ctx, u.BlobKey)
	require.NoError(t, err)
	got, err := io.ReadAll(f)
	f.Close()
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the content key holds the uploaded bytes")
	require.Empty(t, tusKeys(t, r.blobs, id), "the tus object, .info and .part are deleted")

	res = r.do(t, 0, http.MethodHead, Path+"/"+id, 0, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, strconv.Itoa(len(data)), res.Header.Get("Upload-Offset"), "either replica answers for the finished upload")
}

// TestS3SweepRemovesExpiredUnfinishedUploads: an expired upload's .info,
// .part and multipart upload (its stored parts) are removed with its row;
// a live one keeps them.
func TestS3SweepRemovesExpiredUnfinishedUploads(t *testing.T) {
	t.Parallel()
	r := startReplicas(t)
	ctx := context.Background()
	create := func() string {
		res := r.do(t, 0, http.MethodPost, Path, 0, nil, "Upload-Length", strconv.Itoa(16<<20))
		require.Equal(t, http.StatusCreated, res.StatusCode)
		id := path.Base(res.Header.Get("Location"))
		// One full part and the start of the next.
		res = r.do(t, 1, http.MethodPatch, Path+"/"+id, 0, make([]byte, 6<<20))
		require.Equal(t, http.StatusNoContent, res.StatusCode)
		return id
	}
	expired, live := create(), create()
	_, err := r.env.DB.Exec(ctx, `UPDATE uploads SET expires_at = $1 WHERE id = $2`, time.Now().Add(-time.Minute), expired)
	require.NoError(t, err)
	st := r.svc[1].staged.(*s3Staging)
	multiparts := func(id string) int {
		out, err := st.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.bucket), Prefix: aws.String(Prefix + id)})
		require.NoError(t, err)
		return len(out.Uploads)
	}
	require.Equal(t, 1, multiparts(expired))
	require.NotEmpty(t, tusKeys(t, r.blobs, expired))

	n, err := r.svc[0].Sweep(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Empty(t, tusKeys(t, r.blobs, expired), ".info and .part deleted")
	require.Zero(t, multiparts(expired), "the multipart upload is aborted")
	_, err = r.env.Store.GetUpload(ctx, r.env.User.ID, expired)
	require.Error(t, err)

	require.Equal(t, 1, multiparts(live))
	require.NotEmpty(t, tusKeys(t, r.blobs, live))
	res := r.do(t, 0, http.MethodHead, Path+"/"+live, 0, nil)
	require.Equal(t, strconv.Itoa(6<<20), res.Header.Get("Upload-Offset"))
}

// TestDBLockerHoldsAcrossReplicas: a lock one replica holds keeps the
// other's request out until it is released; memory lockers, one per
// process, would not.
func TestDBLockerHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	env := storetest.New(t, storetest.Drivers[0])
	a, b := newDBLocker(env.DB), newDBLocker(env.DB)
	la, err := a.NewLock("u1")
	require.NoError(t, err)
	require.NoError(t, la.Lock(context.Background(), func() {}))

	lb, err := b.NewLock("u1")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, lb.Lock(ctx, func() {}), tusd.ErrLockTimeout, "held by the other replica")

	other, err := b.NewLock("u2")
	require.NoError(t, err)
	require.NoError(t, other.Lock(context.Background(), func() {}), "another upload is not held")
	require.NoError(t, other.Unlock())

	require.NoError(t, la.Unlock())
	require.NoError(t, lb.Lock(context.Background(), func() {}))
	require.NoError(t, lb.Unlock())
}
