package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// Upload is a resumable (tus) upload: who may append to it, how big it
// said it would be, how much has arrived, and — once finished — the blob
// key its bytes are stored under.
type Upload struct {
	ID, UserID string
	Size       int64  // declared before the first byte: Upload-Length
	Received   int64  // bytes safely staged
	HashState  []byte // SHA-256 state (encoding.BinaryMarshaler) of those bytes; nil before the first
	Filename   string // from the tus metadata, cleaned by the caller
	BlobKey    string // "" until finished
	CreatedAt  time.Time
	ExpiresAt  time.Time
	FinishedAt *time.Time
}

// Finished says whether every byte arrived and is in the blob store.
func (u Upload) Finished() bool { return u.BlobKey != "" }

const uploadColumns = `id::text, user_id::text, size, received, hash_state, filename, blob_key, created_at, expires_at, finished_at`

func scanUpload(r sqldb.Row) (u Upload, err error) {
	return u, r.Scan(&u.ID, &u.UserID, &u.Size, &u.Received, &u.HashState, &u.Filename, &u.BlobKey, &u.CreatedAt, &u.ExpiresAt, &u.FinishedAt)
}

// CreateUpload records an upload before any of its bytes is accepted. The
// caller has checked the size and the user's quota.
func (s *Store) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	if _, err := uuid.Parse(u.ID); err != nil {
		return Upload{}, fmt.Errorf("create upload %q: not a uuid", u.ID)
	}
	out, err := scanUpload(s.db.QueryRow(ctx, `INSERT INTO uploads (id, user_id, size, filename, expires_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+uploadColumns, u.ID, u.UserID, u.Size, u.Filename, u.ExpiresAt))
	if err != nil {
		return Upload{}, fmt.Errorf("create upload: %w", err)
	}
	return out, nil
}

// GetUpload returns an upload of userID's. Another user's upload is not
// found, exactly as one that does not exist: an id says nothing to others.
func (s *Store) GetUpload(ctx context.Context, userID, id string) (Upload, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Upload{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no upload %s", id)}
	}
	u, err := scanUpload(s.db.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1 AND user_id::text = $2`, id, userID))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Upload{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no upload %s", id)}
	}
	if err != nil {
		return Upload{}, fmt.Errorf("get upload %s: %w", id, err)
	}
	return u, nil
}

// ErrUploadMoved is SetUploadProgress's answer when the upload is no longer
// where the caller found it: another request wrote to it meanwhile, or it
// finished or went away.
var ErrUploadMoved = errors.New("the upload moved on meanwhile")

// SetUploadProgress records that an unfinished upload's staged bytes grew
// from `from` to `to`, with hashState the SHA-256 state of all of them. It
// is a compare-and-set on from: a writer that lost its lock cannot record
// over another's progress (ErrUploadMoved).
func (s *Store) SetUploadProgress(ctx context.Context, id string, from, to int64, hashState []byte) error {
	tag, err := s.db.Exec(ctx, `UPDATE uploads SET received = $3, hash_state = $4
		WHERE id = $1 AND received = $2 AND blob_key = '' AND $3 <= size`, id, from, to, hashState)
	if err != nil {
		return fmt.Errorf("set upload %s progress: %w", id, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("set upload %s progress from %d: %w", id, from, ErrUploadMoved)
	}
	return nil
}

// uploadLockBase is the advisory lock space of uploads ("ytcup" in the
// high bytes): an upload's lock is this plus 32 bits of its id.
const uploadLockBase = 0x7974637570 << 24

// LockUpload waits for the exclusive lock of one upload, held until
// release: on PostgreSQL every replica's requests for the upload take
// turns, on SQLite this process's.
func (s *Store) LockUpload(ctx context.Context, id string) (release func(), err error) {
	h := fnv.New32a()
	h.Write([]byte(id))
	release, _, err = s.db.Lock(ctx, uploadLockBase+int64(h.Sum32()), false, true)
	if err != nil {
		return nil, fmt.Errorf("lock upload %s: %w", id, err)
	}
	return release, nil
}

// FinishUpload marks an upload whole and stored under key.
func (s *Store) FinishUpload(ctx context.Context, id, key string) error {
	_, err := s.db.Exec(ctx, `UPDATE uploads SET received = size, blob_key = $2, finished_at = now() WHERE id = $1`, id, key)
	if err != nil {
		return fmt.Errorf("finish upload %s: %w", id, err)
	}
	return nil
}

// ExpiredUploads returns up to limit uploads whose expiry is before now,
// finished or not, the oldest first.
func (s *Store) ExpiredUploads(ctx context.Context, now time.Time, limit int) ([]Upload, error) {
	rows, err := s.db.Query(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE expires_at < $1 ORDER BY expires_at LIMIT $2`, now, limit)
	out, err := sqldb.Collect(rows, err, scanUpload)
	if err != nil {
		return nil, fmt.Errorf("expired uploads: %w", err)
	}
	return out, nil
}

// DeleteUpload forgets an upload's row; its bytes are the caller's to
// remove. A missing row is no error.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM uploads WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// OpenUploadBytes is the declared size of userID's unfinished uploads that
// have not expired: the disk they may still claim.
func (s *Store) OpenUploadBytes(ctx context.Context, userID string, now time.Time) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT coalesce(sum(size), 0)::bigint FROM uploads WHERE user_id::text = $1 AND blob_key = '' AND expires_at >= $2`,
		userID, now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("open upload bytes: %w", err)
	}
	return n, nil
}
