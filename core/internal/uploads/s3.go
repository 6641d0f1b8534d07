package uploads

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/tus/tusd/v2/pkg/filelocker"
	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	"github.com/tus/tusd/v2/pkg/s3store"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// S3Config is core's bucket, where unfinished uploads go when core runs on
// S3: any replica can then serve any request of an upload.
type S3Config struct {
	Endpoint             string // host:port
	AccessKey, SecretKey string
	Bucket               string
	UseSSL               bool
	Region               string // default "us-east-1"
}

// Prefix is where unfinished uploads live in the bucket: tus/<id> (the
// multipart upload, then the whole file), tus/<id>.info and tus/<id>.part.
const Prefix = "tus/"

// staging is where an upload's bytes wait until they are whole.
type staging interface {
	useIn(c *tusd.StoreComposer)
	// whole says whether every byte of an unfinished upload is stored, so
	// open reads the whole file.
	whole(ctx context.Context, id string, size int64) bool
	open(ctx context.Context, id string) (io.ReadCloser, error)
	// drop removes what an upload left, finished or not.
	drop(ctx context.Context, id string) error
}

// dirStaging is tusd's filestore: a single box.
type dirStaging struct {
	dir string
}

func (d dirStaging) useIn(c *tusd.StoreComposer) {
	filestore.New(d.dir).UseIn(c)
	// A file lock, not a memory one: two requests for one upload (a client
	// resuming while its dropped request still drains) must not interleave.
	filelocker.New(d.dir).UseIn(c)
}

func (d dirStaging) whole(_ context.Context, id string, size int64) bool {
	st, err := os.Stat(filepath.Join(d.dir, id))
	return err == nil && st.Size() == size
}

func (d dirStaging) open(_ context.Context, id string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(d.dir, id))
}

func (d dirStaging) drop(_ context.Context, id string) error {
	var errs []error
	for _, p := range []string{filepath.Join(d.dir, id), filepath.Join(d.dir, id+".info")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// s3Staging is tusd's s3store on core's bucket under Prefix: every PATCH
// becomes parts of an S3 multipart upload, so a resumed request finds the
// upload whichever replica it reaches.
type s3Staging struct {
	client *s3.Client
	bucket string
	store  s3store.S3Store
	blobs  blob.Store // the same bucket, read through core's client
	db     sqldb.DB
}

func newS3Staging(cfg S3Config, tmp string, db sqldb.DB, blobs blob.Store) *s3Staging {
	scheme := "http://"
	if cfg.UseSSL {
		scheme = "https://"
	}
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(scheme + cfg.Endpoint),
		Region:       cmp.Or(cfg.Region, "us-east-1"),
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		// MinIO and most S3-compatible stores serve buckets by path, not by
		// virtual host.
		UsePathStyle: true,
		// s3store sends its own MD5 and SHA-256; the SDK's default CRC
		// trailers are not understood by every S3-compatible store.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	st := s3store.New(cfg.Bucket, client)
	st.ObjectPrefix = Prefix
	// A PATCH's body is cut into parts on disk before each goes to S3.
	st.TemporaryDirectory = tmp
	// At most this much disk per PATCH in flight: 16 MiB parts, 4 waiting.
	st.PreferredPartSize = 16 << 20
	st.MaxBufferedParts = 4
	return &s3Staging{client: client, bucket: cfg.Bucket, store: st, blobs: blobs, db: db}
}

func (s *s3Staging) useIn(c *tusd.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseLocker(newDBLocker(s.db))
}

// s3store names an upload <object id>+<multipart id>, while core recorded
// and handed out the object id alone (the id of the uploads row, which
// CreateJob looks up): so uploads are shown under the object id, and the
// multipart id is read back from the upload's .info object.

func (s *s3Staging) NewUpload(ctx context.Context, info tusd.FileInfo) (tusd.Upload, error) {
	up, err := s.store.NewUpload(ctx, info)
	if err != nil {
		return nil, err
	}
	return renamed{up}, nil
}

func (s *s3Staging) GetUpload(ctx context.Context, id string) (tusd.Upload, error) {
	full, err := s.fullID(ctx, id)
	if err != nil {
		return nil, err
	}
	up, err := s.store.GetUpload(ctx, full)
	if err != nil {
		return nil, err
	}
	return renamed{up}, nil
}

func (s *s3Staging) AsTerminatableUpload(up tusd.Upload) tusd.TerminatableUpload {
	return s.store.AsTerminatableUpload(up.(renamed).Upload)
}

// fullID reads s3store's id of the upload core calls id.
func (s *s3Staging) fullID(ctx context.Context, id string) (string, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(Prefix + id + ".info")})
	if err != nil {
		if _, ok := errors.AsType[*types.NoSuchKey](err); ok {
			return "", tusd.ErrNotFound
		}
		return "", fmt.Errorf("read upload info %s: %w", id, err)
	}
	defer out.Body.Close()
	var info tusd.FileInfo
	if err := json.NewDecoder(io.LimitReader(out.Body, 1<<20)).Decode(&info); err != nil {
		return "", fmt.Errorf("read upload info %s: %w", id, err)
	}
	if obj, _, _ := strings.Cut(info.ID, "+"); obj != id {
		return "", fmt.Errorf("upload info %s names upload %q", id, info.ID)
	}
	return info.ID, nil
}

// renamed shows an s3store upload under its object id.
type renamed struct{ tusd.Upload }

func (r renamed) GetInfo(ctx context.Context) (tusd.FileInfo, error) {
	info, err := r.Upload.GetInfo(ctx)
	info.ID, _, _ = strings.Cut(info.ID, "+")
	return info, err
}

func (s *s3Staging) whole(ctx context.Context, id string, size int64) bool {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(Prefix + id)})
	if err == nil {
		return aws.ToInt64(head.ContentLength) == size
	}
	// Every part may have arrived while completing the multipart upload
	// failed: complete it now.
	up, err := s.GetUpload(ctx, id)
	if err != nil {
		return false
	}
	info, err := up.GetInfo(ctx)
	if err != nil || info.Size != size || info.Offset != size {
		return false
	}
	return up.FinishUpload(ctx) == nil
}

// open streams the completed object through core's own client.
func (s *s3Staging) open(ctx context.Context, id string) (io.ReadCloser, error) {
	return s.blobs.Open(ctx, Prefix+id)
}

// drop aborts the multipart upload (its parts are stored and billed until
// then) and deletes the object, .info and .part.
func (s *s3Staging) drop(ctx context.Context, id string) error {
	up, err := s.GetUpload(ctx, id)
	switch {
	case errors.Is(err, tusd.ErrNotFound):
		// No .info: the upload was recorded but s3store never created it,
		// or a drop got halfway.
	case err != nil:
		return err
	default:
		if err := s.AsTerminatableUpload(up).Terminate(ctx); err != nil {
			return fmt.Errorf("terminate upload %s: %w", id, err)
		}
	}
	var errs []error
	for _, k := range []string{Prefix + id, Prefix + id + ".part", Prefix + id + ".info"} {
		errs = append(errs, s.blobs.Delete(ctx, k))
	}
	return errors.Join(errs...)
}

// dbLocker serialises the requests of one upload across replicas with an
// advisory lock of the database they share (tusd offers only process- and
// disk-local lockers): a PATCH that outlives its client's connection must
// not interleave parts with the resumed PATCH on another replica.
// Within a process tusd's memory locker is taken first, so a request
// asks a stalled one on the same replica to let go (tusd's release
// request), and only one request per upload and replica waits on the
// database. Across replicas there is no release request: the resumed
// request waits (AcquireLockTimeout) until the stalled one notices its
// connection is gone.
type dbLocker struct {
	db    sqldb.DB
	local *memorylocker.MemoryLocker
}

func newDBLocker(db sqldb.DB) dbLocker {
	return dbLocker{db: db, local: memorylocker.New()}
}

func (l dbLocker) NewLock(id string) (tusd.Lock, error) {
	local, err := l.local.NewLock(id)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("ytcaption/uploads/" + id))
	return &dbLock{db: l.db, key: int64(h.Sum64()), local: local}, nil
}

type dbLock struct {
	db      sqldb.DB
	key     int64
	local   tusd.Lock
	release func()
}

func (l *dbLock) Lock(ctx context.Context, requestRelease func()) error {
	if err := l.local.Lock(ctx, requestRelease); err != nil {
		return err
	}
	release, ok, err := l.db.Lock(ctx, l.key, false, true)
	if err != nil || !ok {
		_ = l.local.Unlock()
		if ctx.Err() != nil {
			return tusd.ErrLockTimeout
		}
		return fmt.Errorf("lock upload: %w", err)
	}
	l.release = release
	return nil
}

func (l *dbLock) Unlock() error {
	if l.release != nil {
		l.release()
		l.release = nil
	}
	return l.local.Unlock()
}
