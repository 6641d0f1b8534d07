package blob

import (
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// DirPath is where core serves a Dir's presigned URLs.
const DirPath = "/blobs/{key...}"

// Dir keeps blobs as files under a directory, for a single box without S3.
// Writes go to a temporary file renamed into place, so a crash leaves either
// the old blob or the new one. Its presigned URLs point at core's own blob
// handler (Dir is an http.Handler): the key, an expiry and an HMAC-SHA256 of
// both under a key kept in the directory, so URLs outlive a restart.
type Dir struct {
	root   string
	secret []byte

	mu   sync.RWMutex
	base string // e.g. http://127.0.0.1:8020, without the trailing slash
}

// OpenDir opens (creating) the blob directory root. base is the URL core's
// handler answers at; "" waits for DefaultBaseURL.
func OpenDir(root, base string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(root, ".presign-key")
	secret, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		secret = make([]byte, 32)
		if _, err := crand.Read(secret); err != nil {
			return nil, err
		}
		if err := writeAtomic(keyFile, func(f *os.File) error { _, err := f.Write(secret); return err }); err != nil {
			return nil, fmt.Errorf("write presign key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read presign key: %w", err)
	}
	return &Dir{root: root, secret: secret, base: strings.TrimSuffix(base, "/")}, nil
}

// Root is the directory.
func (d *Dir) Root() string { return d.root }

// DefaultBaseURL sets the presigned URLs' base unless one was configured.
func (d *Dir) DefaultBaseURL(base string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.base == "" {
		d.base = strings.TrimSuffix(base, "/")
	}
}

// path maps a key to its file, refusing keys that would leave the root.
func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasPrefix(key, ".") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("blob key %q: %w", key, job.ErrNotFound)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, ".") {
			return "", fmt.Errorf("blob key %q: %w", key, job.ErrNotFound)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// writeAtomic writes path through a temporary file in its directory.
func writeAtomic(path string, write func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func (d *Dir) Put(_ context.Context, key string, r io.Reader, size int64, _ string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	return writeAtomic(p, func(f *os.File) error {
		n, err := io.Copy(f, r)
		if err == nil && size >= 0 && n != size {
			err = fmt.Errorf("put %s: %d bytes, want %d", key, n, size)
		}
		return err
	})
}

func (d *Dir) PutFile(ctx context.Context, key, path, contentType string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	return d.Put(ctx, key, src, -1, contentType)
}

func (d *Dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", key, job.ErrNotFound)
	}
	return f, err
}

func (d *Dir) GetFile(ctx context.Context, key, path string) error { return getFile(ctx, d, key, path) }

func (d *Dir) Exists(ctx context.Context, key string) (bool, error) {
	_, ok, err := d.Stored(ctx, key)
	return ok, err
}

func (d *Dir) Stored(_ context.Context, key string) (time.Time, bool, error) {
	p, err := d.path(key)
	if err != nil {
		return time.Time{}, false, nil
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return fi.ModTime(), true, nil
}

func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Compose writes the concatenation of srcs to dst, atomically.
func (d *Dir) Compose(_ context.Context, dst string, srcs []string) error {
	p, err := d.path(dst)
	if err != nil {
		return err
	}
	return writeAtomic(p, func(f *os.File) error {
		for _, k := range srcs {
			sp, err := d.path(k)
			if err != nil {
				return err
			}
			if err := appendFile(f, sp); err != nil {
				return fmt.Errorf("compose %s: %w", dst, err)
			}
		}
		return nil
	})
}

func appendFile(dst *os.File, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	_, err = io.Copy(dst, src)
	return err
}

// DeletePrefix removes the directory that holds the keys under prefix.
func (d *Dir) DeletePrefix(_ context.Context, prefix string) error {
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("delete prefix %q: must end in /", prefix)
	}
	p, err := d.path(strings.TrimSuffix(prefix, "/"))
	if err != nil {
		return err
	}
	return os.RemoveAll(p)
}

// Keys lists every blob (not the directory's own dot files).
func (d *Dir) Keys(context.Context) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") && p != d.root {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(d.root, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	return keys, err
}

func (d *Dir) Ping(context.Context) error {
	_, err := os.Stat(d.root)
	return err
}

func (d *Dir) sign(key string, expires int64) string {
	m := hmac.New(sha256.New, d.secret)
	fmt.Fprintf(m, "%s\n%d", key, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// PresignGet returns base/blobs/<key>?expires=<unix>&signature=<hmac>.
func (d *Dir) PresignGet(_ context.Context, key string, ttl time.Duration) (string, error) {
	if _, err := d.path(key); err != nil {
		return "", err
	}
	d.mu.RLock()
	base := d.base
	d.mu.RUnlock()
	if base == "" {
		return "", errors.New("presign: the blob handler's URL is not known yet")
	}
	exp := time.Now().Add(ttl).Unix()
	return base + "/blobs/" + (&url.URL{Path: key}).EscapedPath() + "?" + url.Values{
		"expires": {strconv.FormatInt(exp, 10)}, "signature": {d.sign(key, exp)},
	}.Encode(), nil
}

// ServeHTTP answers a presigned GET (Range requests included): 403 for a
// bad or expired signature, 404 for a missing blob.
func (d *Dir) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	exp, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
	want := d.sign(key, exp)
	if err != nil || !hmac.Equal([]byte(want), []byte(r.URL.Query().Get("signature"))) {
		http.Error(w, "signature does not match", http.StatusForbidden)
		return
	}
	if time.Now().Unix() > exp {
		http.Error(w, "the URL has expired", http.StatusForbidden)
		return
	}
	p, err := d.path(key)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
