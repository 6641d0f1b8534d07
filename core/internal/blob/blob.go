// Package blob stores audio and artifacts — in MinIO or any S3-compatible
// store through minio-go (S3), or for a single box in a directory that core
// serves itself (Dir) — and hands gpu-nodes short-lived presigned URLs so
// they never hold storage credentials.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Config locates the bucket.
type Config struct {
	Endpoint             string // host:port
	AccessKey, SecretKey string
	Bucket               string
	UseSSL               bool
	Region               string // default "us-east-1"
}

// Store is where blobs live: an S3 bucket or a directory.
type Store interface {
	// Put stores size bytes from r under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// PutFile stores a local file under key.
	PutFile(ctx context.Context, key, path, contentType string) error
	// Open reads key; a missing key is job.ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// GetFile copies key into a local file.
	GetFile(ctx context.Context, key, path string) error
	Exists(ctx context.Context, key string) (bool, error)
	// Stored reports when key was last written.
	Stored(ctx context.Context, key string) (time.Time, bool, error)
	// Delete removes key; a missing key is no error.
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context) ([]string, error)
	// Compose stores the concatenation of srcs under dst, inside the store
	// (S3: a multipart copy, no byte passes through core). Every source but
	// the last must be at least MinComposePart bytes.
	Compose(ctx context.Context, dst string, srcs []string) error
	// DeletePrefix removes every key under prefix, which must end in "/".
	DeletePrefix(ctx context.Context, prefix string) error
	// PresignGet returns a URL that reads key without credentials until ttl
	// passes.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
	Ping(ctx context.Context) error
}

// S3 is one bucket.
type S3 struct {
	client *minio.Client
	bucket string
}

// metaTimeout bounds calls that move no bodies.
const metaTimeout = 30 * time.Second

// New connects and creates the bucket when it does not exist.
func New(ctx context.Context, cfg Config) (*S3, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: cfg.UseSSL, Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("blob client: %w", err)
	}
	s := &S3{client: client, bucket: cfg.Bucket}
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("check bucket %s: %w", cfg.Bucket, err)
	}
	if !exists {
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		var resp minio.ErrorResponse
		if err != nil && !(errors.As(err, &resp) && (resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists")) {
			return nil, fmt.Errorf("make bucket %s: %w", cfg.Bucket, err)
		}
	}
	return s, nil
}

// Put stores size bytes from r under key.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if _, err := s.client.PutObject(ctx, s.bucket, key, r, size, minio.PutObjectOptions{ContentType: contentType}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutFile stores a local file under key.
func (s *S3) PutFile(ctx context.Context, key, path, contentType string) error {
	if _, err := s.client.FPutObject(ctx, s.bucket, key, path, minio.PutObjectOptions{ContentType: contentType}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func notFound(err error) bool {
	return minio.ToErrorResponse(err).Code == "NoSuchKey"
}

// Open reads key; a missing key is job.ErrNotFound.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	// GetObject is lazy: Stat surfaces a missing key now rather than at Read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if notFound(err) {
			return nil, fmt.Errorf("open %s: %w", key, job.ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return obj, nil
}

// GetFile copies the object at key into the file at path.
func (s *S3) GetFile(ctx context.Context, key, path string) error { return getFile(ctx, s, key, path) }

// getFile copies key from st into a local file.
func getFile(ctx context.Context, st Store, key, path string) error {
	r, err := st.Open(ctx, key)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("read %s: %w", key, err)
	}
	return f.Close()
}

// Exists reports whether key is stored.
func (s *S3) Exists(ctx context.Context, key string) (bool, error) {
	_, ok, err := s.Stored(ctx, key)
	return ok, err
}

// Stored reports whether key is stored, and when it last was.
func (s *S3) Stored(ctx context.Context, key string) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return info.LastModified, true, nil
	}
	if notFound(err) {
		return time.Time{}, false, nil
	}
	return time.Time{}, false, fmt.Errorf("stat %s: %w", key, err)
}

// Delete removes key; a missing key is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Keys lists every key in the bucket.
func (s *S3) Keys(ctx context.Context) ([]string, error) {
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %s: %w", s.bucket, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys, nil
}

// MinComposePart is S3's smallest part: Compose's sources but the last must
// be at least this big.
const MinComposePart = 5 << 20

// Compose concatenates srcs into dst with S3's multipart copy.
func (s *S3) Compose(ctx context.Context, dst string, srcs []string) error {
	from := make([]minio.CopySrcOptions, len(srcs))
	for i, k := range srcs {
		from[i] = minio.CopySrcOptions{Bucket: s.bucket, Object: k}
	}
	if _, err := s.client.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: dst}, from...); err != nil {
		return fmt.Errorf("compose %s from %d parts: %w", dst, len(srcs), err)
	}
	return nil
}

// DeletePrefix removes every key under prefix.
func (s *S3) DeletePrefix(ctx context.Context, prefix string) error {
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("delete prefix %q: must end in /", prefix)
	}
	objs := s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	for e := range s.client.RemoveObjects(ctx, s.bucket, objs, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			return fmt.Errorf("delete prefix %s: %w", prefix, e.Err)
		}
	}
	return nil
}

// PresignGet returns a URL that reads key without credentials until ttl passes.
func (s *S3) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	u, err := s.client.PresignedGetObject(ctx, s.bucket, key, ttl, nil)
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", key, err)
	}
	return u.String(), nil
}

// Ping checks that the bucket is reachable (for readiness probes).
func (s *S3) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, metaTimeout)
	defer cancel()
	if _, err := s.client.BucketExists(ctx, s.bucket); err != nil {
		return fmt.Errorf("ping blob store: %w", err)
	}
	return nil
}

// ContentKey is the content-addressed key of data with this SHA-256:
// prefix/ab/abcdef….ext. The two-character fan-out keeps listings short.
func ContentKey(prefix string, sum []byte, ext string) string {
	h := hex.EncodeToString(sum)
	return prefix + "/" + h[:2] + "/" + h + ext
}

// HashFile returns the SHA-256 of a file's contents.
func HashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
