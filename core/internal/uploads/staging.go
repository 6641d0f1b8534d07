package uploads

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	tusd "github.com/tus/tusd/v2/pkg/handler"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// Staging: an unfinished upload's bytes live in the blob store, so any core
// replica can take its next PATCH, and its progress lives in the database:
//
//	staging/uploads/<id>/000001, 000002, …  parts of exactly partSize bytes
//	staging/uploads/<id>/tail-<offset>       the bytes after the last part (< partSize)
//	uploads.received, uploads.hash_state     how many bytes are staged, and their SHA-256 so far
//
// A PATCH is written synchronously under the upload's lock: the tail (if
// any) and the new bytes fill a part spooled on local disk; a full part is
// put and the progress recorded; when the body ends the rest is put as the
// new tail and recorded. The row moves only after the bytes are in the blob
// store, and a part's key is its number, so a PATCH cut at any point leaves
// the row at a consistent offset: the client resumes from it and re-sends the
// same bytes into the same part keys. When the last byte arrives the parts
// are composed, inside the blob store, into the content key the SHA-256 names.
//
// Why not tusd's s3store: its part uploads run in the background and a
// dropped PATCH's late ones landed after the resumed request re-sent them
// (docs/uploads.md); it also needs the AWS SDK beside minio-go and would key
// the file by upload id, not content.

// partSize is the size of every part but the last: above S3's minimum of
// 5 MiB, and 512 parts for the default 4 GiB maximum (S3 allows 10,000).
const partSize = 8 << 20

// putTimeout bounds one put of a part or tail, and the read of a tail; the
// PATCH's client may be gone, but its bytes are kept.
const putTimeout = 5 * time.Minute

func stagingPrefix(id string) string    { return "staging/uploads/" + id + "/" }
func partKey(id string, n int64) string { return fmt.Sprintf("%s%06d", stagingPrefix(id), n) }
func tailKey(id string, offset int64) string {
	return fmt.Sprintf("%stail-%d", stagingPrefix(id), offset)
}

// staging is tusd's DataStore over the blob store.
type staging struct{ s *Service }

// NewUpload returns the upload preCreate recorded: nothing is staged before
// the first byte.
func (st staging) NewUpload(ctx context.Context, info tusd.FileInfo) (tusd.Upload, error) {
	return st.GetUpload(ctx, info.ID)
}

func (st staging) GetUpload(ctx context.Context, id string) (tusd.Upload, error) {
	user, _ := ctx.Value(userKey{}).(string)
	u, err := st.s.store.GetUpload(ctx, user, id)
	if job.CodeOf(err) == job.CodeNotFound {
		return nil, tusd.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &stagedUpload{s: st.s, u: u}, nil
}

func (st staging) AsTerminatableUpload(up tusd.Upload) tusd.TerminatableUpload {
	return up.(*stagedUpload)
}

// UseIn registers the store and its lock with tusd.
func (st staging) UseIn(c *tusd.StoreComposer) {
	c.UseCore(st)
	c.UseTerminater(st)
	c.UseLocker(uploadLocker{st.s.store})
}

type stagedUpload struct {
	s *Service
	u store.Upload
}

func (up *stagedUpload) GetInfo(context.Context) (tusd.FileInfo, error) {
	return tusd.FileInfo{ID: up.u.ID, Size: up.u.Size, Offset: up.u.Received,
		MetaData: tusd.MetaData{"filename": up.u.Filename}}, nil
}

// GetReader is never called: downloads are disabled.
func (up *stagedUpload) GetReader(context.Context) (io.ReadCloser, error) {
	return nil, errors.New("uploads are not served back")
}

// FinishUpload does nothing: preFinish composes the file, so that a
// failure answers the client in our error shape.
func (up *stagedUpload) FinishUpload(context.Context) error { return nil }

// Terminate removes the staged bytes, then the row.
func (up *stagedUpload) Terminate(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	if err := up.s.blobs.DeletePrefix(ctx, stagingPrefix(up.u.ID)); err != nil {
		return err
	}
	return up.s.store.DeleteUpload(ctx, up.u.ID)
}

// WriteChunk stages src from offset (tusd checked it is the upload's offset
// and bounds src to the declared size) and returns how many of its bytes
// are safely staged.
func (up *stagedUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	ctx = context.WithoutCancel(ctx) // a cut PATCH's bytes are kept
	u := up.u
	if offset != u.Received {
		return 0, tusd.ErrMismatchOffset
	}
	h := sha256.New()
	if u.HashState != nil {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err != nil {
			return 0, fmt.Errorf("upload %s: hash state: %w", u.ID, err)
		}
	}
	spool, err := os.CreateTemp(up.s.cfg.Dir, "part-*")
	if err != nil {
		return 0, err
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()

	// The part being filled starts at the last part's end: the tail staged
	// by the previous PATCH comes first (already hashed).
	start := offset - offset%partSize
	tail := tailKey(u.ID, offset)
	if offset > start {
		if err := up.copyBlob(ctx, spool, tail); err != nil {
			return 0, err
		}
	} else {
		tail = ""
	}
	filled := offset - start // bytes in the spool
	staged := offset         // bytes of the upload safely in the blob store
	for {
		n, err := io.Copy(spool, io.TeeReader(io.LimitReader(src, partSize-filled), h))
		filled += n
		if err != nil {
			return staged - offset, err
		}
		end := start + filled
		if filled < partSize && end < u.Size {
			// The body ended mid-part: what arrived is the new tail.
			if end == staged {
				return staged - offset, nil
			}
			if err := up.put(ctx, tailKey(u.ID, end), spool); err != nil {
				return staged - offset, err
			}
		} else if err := up.put(ctx, partKey(u.ID, start/partSize+1), spool); err != nil {
			return staged - offset, err
		}
		if err := up.record(ctx, staged, end, h); err != nil {
			return staged - offset, err
		}
		up.dropTail(ctx, tail)
		staged = end
		if filled < partSize || end == u.Size {
			return staged - offset, nil
		}
		start, filled, tail = end, 0, ""
		if err := spool.Truncate(0); err != nil {
			return staged - offset, err
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return staged - offset, err
		}
	}
}

// copyBlob appends the blob at key to f, bounded like a put: the upload's
// lock is held meanwhile, and a blob store that stopped answering must not
// keep it.
func (up *stagedUpload) copyBlob(ctx context.Context, f *os.File, key string) error {
	ctx, cancel := context.WithTimeout(ctx, putTimeout)
	defer cancel()
	r, err := up.s.blobs.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("upload %s: read its tail: %w", up.u.ID, err)
	}
	defer r.Close()
	_, err = io.Copy(f, r)
	return err
}

// put stores the spool's contents under key.
func (up *stagedUpload) put(ctx context.Context, key string, spool *os.File) error {
	size, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, putTimeout)
	defer cancel()
	return up.s.blobs.Put(ctx, key, io.NewSectionReader(spool, 0, size), size, "application/octet-stream")
}

// record moves the upload's row from staged to end bytes, with the hash of
// all of them.
func (up *stagedUpload) record(ctx context.Context, staged, end int64, h hash.Hash) error {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	if err := up.s.store.SetUploadProgress(ctx, up.u.ID, staged, end, state); err != nil {
		return err
	}
	up.u.Received, up.u.HashState = end, state
	return nil
}

// dropTail removes a tail the recorded progress no longer names. A failure
// costs only space until the upload is swept.
func (up *stagedUpload) dropTail(ctx context.Context, key string) {
	if key == "" {
		return
	}
	if err := up.s.blobs.Delete(ctx, key); err != nil {
		up.s.log.WarnContext(ctx, "remove an upload's old tail", "upload_id", up.u.ID, "err", err)
	}
}

// compose makes a whole upload's file: its parts concatenated, inside the
// blob store, under the content key its SHA-256 names.
func (s *Service) compose(ctx context.Context, u store.Upload) (string, error) {
	if u.Received != u.Size || u.HashState == nil {
		return "", fmt.Errorf("upload %s: %d of %d bytes staged", u.ID, u.Received, u.Size)
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.HashState); err != nil {
		return "", fmt.Errorf("upload %s: hash state: %w", u.ID, err)
	}
	key := blob.ContentKey("uploads", h.Sum(nil), "")
	parts := make([]string, 0, (u.Size+partSize-1)/partSize)
	for n := int64(1); (n-1)*partSize < u.Size; n++ {
		parts = append(parts, partKey(u.ID, n))
	}
	if err := s.blobs.Compose(ctx, key, parts); err != nil {
		return "", err
	}
	return key, nil
}

// uploadLocker is tusd's Locker over the store's upload locks.
type uploadLocker struct{ st *store.Store }

func (l uploadLocker) NewLock(id string) (tusd.Lock, error) {
	return &uploadLock{st: l.st, id: id}, nil
}

type uploadLock struct {
	st      *store.Store
	id      string
	release func()
}

// Lock waits for the upload's lock until ctx ends (tusd's lock timeout).
// The holder is not asked to let go: it is a PATCH still reading a body
// whose client went away, and it ends as its connection does, keeping what
// arrived — which is what the client's next request must find.
func (l *uploadLock) Lock(ctx context.Context, _ func()) error {
	release, err := l.st.LockUpload(ctx, l.id)
	if err != nil {
		if ctx.Err() != nil {
			return tusd.ErrLockTimeout
		}
		return err
	}
	l.release = release
	return nil
}

func (l *uploadLock) Unlock() error {
	if l.release != nil {
		l.release()
		l.release = nil
	}
	return nil
}
