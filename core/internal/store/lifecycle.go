package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// blobRefs are the blob keys jobs refer to — their audio, their chunks'
// audio, an upload's file — with when each referring job finished (NULL:
// still running) and whether its blobs already expired.
const blobRefs = `
	SELECT audio_key AS k, finished_at AS f, blobs_expired AS e, id FROM jobs WHERE audio_key <> ''
	UNION ALL
	SELECT canonical_url, finished_at, blobs_expired, id FROM jobs WHERE source_kind = 'upload'`

// ExpireAudio queues for deletion up to limit blobs that only jobs finished
// before cutoff refer to, and marks those jobs: their transcripts stay. It
// returns how many blobs it queued.
func (s *Store) ExpireAudio(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n := 0
	err := s.inTx(ctx, "expire audio", func(tx sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT k FROM (`+blobRefs+`) r GROUP BY k
			HAVING bool_and(e OR (f IS NOT NULL AND f < $1)) AND NOT bool_and(e) LIMIT $2`, cutoff, limit)
		if err != nil {
			return fmt.Errorf("find expired audio: %w", err)
		}
		keys, err := sqldb.Collect(rows, nil, sqldb.Scalar[string])
		if err != nil || len(keys) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET blobs_expired = true, audio_key = '', updated_at = now()
			WHERE audio_key = ANY($1) OR (source_kind = 'upload' AND canonical_url = ANY($1))`, keys); err != nil {
			return fmt.Errorf("mark expired audio: %w", err)
		}
		n = len(keys)
		_, err = queueBlobDeletions(ctx, tx, keys, "retention")
		return err
	})
	return n, err
}

// uploadRefsSQL is true when a job refers to the upload blob $1 and still
// needs it.
const uploadRefsSQL = `EXISTS (SELECT 1 FROM jobs WHERE source_kind = 'upload' AND canonical_url = $1 AND NOT blobs_expired)
	OR EXISTS (SELECT 1 FROM jobs WHERE audio_key = $1)`

// ForgetUpload queues an uploaded blob for deletion unless a job refers to
// it (uploads are content-addressed: another job may have the same file),
// for an upload whose job was never created. It returns what it queued.
func (s *Store) ForgetUpload(ctx context.Context, key string) ([]BlobDeletion, error) {
	var ds []BlobDeletion
	err := s.inTx(ctx, "forget upload "+key, func(tx sqldb.Tx) error {
		var referenced bool
		if err := tx.QueryRow(ctx, `SELECT `+uploadRefsSQL, key).Scan(&referenced); err != nil {
			return fmt.Errorf("find jobs of upload %s: %w", key, err)
		}
		if referenced {
			return nil
		}
		var err error
		ds, err = queueBlobDeletions(ctx, tx, []string{key}, "upload refused")
		return err
	})
	return ds, err
}

// UploadState says whether a job refers to the upload blob key, and whether
// the blob is queued for deletion (and not deleted yet).
func (s *Store) UploadState(ctx context.Context, key string) (referenced, deletionPending bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT `+uploadRefsSQL+`, EXISTS (SELECT 1 FROM blob_deletions WHERE key = $1 AND deleted_at IS NULL)`,
		key).Scan(&referenced, &deletionPending)
	if err != nil {
		return false, false, fmt.Errorf("state of upload %s: %w", key, err)
	}
	return referenced, deletionPending, nil
}

// queueBlobDeletions queues keys for deletion and returns the entries.
func queueBlobDeletions(ctx context.Context, tx sqldb.Tx, keys []string, reason string) ([]BlobDeletion, error) {
	rows, err := tx.Query(ctx, `INSERT INTO blob_deletions (key, reason) SELECT k, $2 FROM unnest($1::text[]) AS t(k) WHERE true
		ON CONFLICT (key) DO UPDATE SET reason = EXCLUDED.reason, requested_at = now(), deleted_at = NULL
		RETURNING key, requested_at`, keys, reason)
	if err != nil {
		return nil, fmt.Errorf("queue blob deletions: %w", err)
	}
	ds, err := sqldb.Collect(rows, nil, scanBlobDeletion)
	if err != nil {
		return nil, fmt.Errorf("queue blob deletions: %w", err)
	}
	return ds, nil
}

// ExpireTranscripts deletes the segments of up to limit jobs finished before
// cutoff; the jobs stay, saying their transcript expired. (Two statements,
// not one with a DELETE in a WITH: SQLite has no data-modifying CTEs.)
func (s *Store) ExpireTranscripts(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n := 0
	err := s.inTx(ctx, "expire transcripts", func(tx sqldb.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE jobs SET transcript_expired = true, updated_at = now()
			WHERE id IN (SELECT id FROM jobs WHERE finished_at < $1 AND NOT transcript_expired LIMIT $2 FOR UPDATE SKIP LOCKED)
			RETURNING id::text`, cutoff, limit)
		ids, err := sqldb.Collect(rows, err, sqldb.Scalar[string])
		if err != nil {
			return fmt.Errorf("expire transcripts: %w", err)
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM segments WHERE job_id = ANY($1::uuid[])`, ids); err != nil {
			return fmt.Errorf("expire transcripts: %w", err)
		}
		// So are their revisions, the owner's edits of it.
		if _, err := tx.Exec(ctx, `DELETE FROM transcript_revisions WHERE job_id = ANY($1::uuid[])`, ids); err != nil {
			return fmt.Errorf("expire transcript revisions: %w", err)
		}
		// Their translations are the transcript too.
		if _, err := tx.Exec(ctx, `DELETE FROM translations WHERE job_id = ANY($1::uuid[])`, ids); err != nil {
			return fmt.Errorf("expire translations: %w", err)
		}
		return nil
	})
	return n, err
}

// ExpireJobs deletes up to limit jobs finished before cutoff, with all that
// is theirs (see purge).
func (s *Store) ExpireJobs(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n := 0
	err := s.inTx(ctx, "expire jobs", func(tx sqldb.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text FROM jobs WHERE finished_at < $1 AND parent_id IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED`, cutoff, limit)
		if err != nil {
			return fmt.Errorf("find expired jobs: %w", err)
		}
		ids, err := sqldb.Collect(rows, nil, sqldb.Scalar[string])
		if err != nil {
			return err
		}
		n = len(ids)
		_, err = purge(ctx, tx, ids, "retention")
		return err
	})
	return n, err
}

// purge deletes jobs ids and everything that is theirs — chunks, segments,
// attempts, idempotency keys — and queues for deletion the blobs no other job
// refers to, returning them. A purged job is no longer anybody's transcript
// cache.
func purge(ctx context.Context, tx sqldb.Tx, ids []string, reason string) ([]BlobDeletion, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `
		WITH doomed AS (SELECT id FROM jobs WHERE id = ANY($1::uuid[]) OR parent_id = ANY($1::uuid[])),
		     refs AS (SELECT k, id FROM (`+blobRefs+`) r)
		SELECT DISTINCT k FROM refs WHERE id IN (SELECT id FROM doomed)
			AND NOT EXISTS (SELECT 1 FROM refs o WHERE o.k = refs.k AND o.id NOT IN (SELECT id FROM doomed))`, ids)
	if err != nil {
		return nil, fmt.Errorf("find the blobs of the purged jobs: %w", err)
	}
	keys, err := sqldb.Collect(rows, nil, sqldb.Scalar[string])
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM jobs WHERE id = ANY($1::uuid[])`, ids); err != nil {
		return nil, fmt.Errorf("purge jobs: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return queueBlobDeletions(ctx, tx, keys, reason)
}

// PurgeJob deletes a finished job of userID's with its transcript, and
// queues its audio for deletion, returning what it queued. A running job must
// be cancelled first.
func (s *Store) PurgeJob(ctx context.Context, userID, id string) ([]BlobDeletion, error) {
	j, err := s.GetJob(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	if !j.Status.Terminal() {
		return nil, job.Errorf(job.CodeConflict, "job %s is %s: cancel it before purging it", id, j.Status)
	}
	var ds []BlobDeletion
	err = s.inTx(ctx, "purge job "+id, func(tx sqldb.Tx) (err error) {
		ds, err = purge(ctx, tx, []string{id}, "purge")
		return err
	})
	return ds, err
}

// DeleteUser deletes the user named name, every job of theirs with all that
// is theirs, and their keys, and writes it in the audit log as actor's doing.
// It returns how many jobs went. Running jobs are cancelled by the deletion:
// their holders find their leases gone.
func (s *Store) DeleteUser(ctx context.Context, actor, name string) (int, error) {
	n := 0
	err := s.inTx(ctx, "delete user "+name, func(tx sqldb.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `SELECT id::text FROM users WHERE name = $1 FOR UPDATE`, name).Scan(&id)
		if errors.Is(err, sqldb.ErrNoRows) {
			return job.Errorf(job.CodeNotFound, "no user %q", name)
		}
		if err != nil {
			return fmt.Errorf("find user %s: %w", name, err)
		}
		rows, err := tx.Query(ctx, `SELECT id::text FROM jobs WHERE user_id = $1 AND parent_id IS NULL`, id)
		if err != nil {
			return fmt.Errorf("find the jobs of user %s: %w", name, err)
		}
		ids, err := sqldb.Collect(rows, nil, sqldb.Scalar[string])
		if err != nil {
			return err
		}
		if _, err := purge(ctx, tx, ids, "user deleted"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete user %s: %w", name, err)
		}
		n = len(ids)
		return audit(ctx, tx, actor, "delete_user", name, map[string]any{"user_id": id, "jobs": n})
	})
	return n, err
}

func audit(ctx context.Context, tx sqldb.Tx, actor, action, target string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4)`, actor, action, target, b); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// backupLockKey is the advisory lock a backup holds exclusively and blob
// deletion shared ("ytcbkp"): no blob the backup's database dump refers to
// is deleted before the backup has copied it.
const backupLockKey = 0x797463626b70

// BackupLockFile makes the backup lock a lock on the file at path as well,
// for the single box: SQLite's advisory locks live in one process, and a
// backup of a running box (ytcaption-core backup --data-dir) is another
// process, which holds off the box's blob deletions through the file.
func BackupLockFile(path string) Option { return func(s *Store) { s.backupFile = path } }

// HoldForBackup keeps blob deletions waiting until release is called.
func (s *Store) HoldForBackup(ctx context.Context) (release func(), err error) {
	held, _, err := s.db.Lock(ctx, backupLockKey, false, true)
	if err != nil {
		return nil, fmt.Errorf("backup lock: %w", err)
	}
	if s.backupFile == "" {
		return held, nil
	}
	unlock, _, err := sqldb.FileLock(ctx, s.backupFile, false, true)
	if err != nil {
		held()
		return nil, fmt.Errorf("backup lock: %w", err)
	}
	return func() { unlock(); held() }, nil
}

// AllowBlobDeletions returns release and true unless a backup is running.
func (s *Store) AllowBlobDeletions(ctx context.Context) (release func(), ok bool, err error) {
	held, ok, err := s.db.Lock(ctx, backupLockKey, true, false)
	if err != nil {
		return nil, false, fmt.Errorf("blob deletion lock: %w", err)
	}
	if !ok || s.backupFile == "" {
		return held, ok, nil
	}
	unlock, ok, err := sqldb.FileLock(ctx, s.backupFile, true, false)
	if err != nil || !ok {
		held()
		if err != nil {
			return nil, false, fmt.Errorf("blob deletion lock: %w", err)
		}
		return nil, false, nil
	}
	return func() { unlock(); held() }, true, nil
}

// BlobDeletion is a blob queued for deletion.
type BlobDeletion struct {
	Key         string
	RequestedAt time.Time
}

func scanBlobDeletion(r sqldb.Row) (d BlobDeletion, err error) {
	return d, r.Scan(&d.Key, &d.RequestedAt)
}

// PendingBlobDeletions returns up to limit blobs still to delete, oldest first.
func (s *Store) PendingBlobDeletions(ctx context.Context, limit int) ([]BlobDeletion, error) {
	rows, err := s.db.Query(ctx, `SELECT key, requested_at FROM blob_deletions WHERE deleted_at IS NULL ORDER BY requested_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("pending blob deletions: %w", err)
	}
	return sqldb.Collect(rows, nil, scanBlobDeletion)
}

// BlobDeleted notes that the blob is gone — or, kept, that it was stored
// again after being queued and must stay.
func (s *Store) BlobDeleted(ctx context.Context, d BlobDeletion, kept bool) error {
	q := `UPDATE blob_deletions SET deleted_at = now() WHERE key = $1 AND requested_at = $2`
	if kept {
		q = `DELETE FROM blob_deletions WHERE key = $1 AND requested_at = $2`
	}
	if _, err := s.db.Exec(ctx, q, d.Key, d.RequestedAt); err != nil {
		return fmt.Errorf("note blob deletion of %s: %w", d.Key, err)
	}
	return nil
}

// Sweep is what one retention pass did.
type Sweep struct {
	Cutoff                          time.Time // the audio cutoff
	Audio, Transcripts, Jobs, Blobs int
}

// RecordSweep keeps what a pass did.
func (s *Store) RecordSweep(ctx context.Context, w Sweep) error {
	_, err := s.db.Exec(ctx, `INSERT INTO sweeps (cutoff, audio, transcripts, jobs, blobs) VALUES ($1, $2, $3, $4, $5)`,
		w.Cutoff, w.Audio, w.Transcripts, w.Jobs, w.Blobs)
	if err != nil {
		return fmt.Errorf("record sweep: %w", err)
	}
	return nil
}
