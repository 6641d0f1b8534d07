package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/sharetoken"
)

// Share is a share link of a job (docs/editing.md): its token is never
// stored, only the token's hash.
type Share struct {
	ID, JobID, UserID string
	// Revision pins the transcript's revision the link shows; nil: the
	// latest when it is opened.
	Revision  *int
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero: not revoked
}

// Bounds on a job's share links: at most MaxLiveShares live ones, and the
// newest keptDeadShares revoked or expired ones (for the owner's list);
// older dead ones are deleted when a link is made, so however many links a
// user makes and revokes, a job holds at most their sum.
const (
	MaxLiveShares  = 50
	keptDeadShares = 50
)

const shareColumns = `id::text, job_id::text, user_id::text, revision, created_at, expires_at, revoked_at`

func scanShare(r sqldb.Row) (Share, error) {
	var (
		sh       Share
		revision *int
		revoked  *time.Time
	)
	if err := r.Scan(&sh.ID, &sh.JobID, &sh.UserID, &revision, &sh.CreatedAt, &sh.ExpiresAt, &revoked); err != nil {
		return Share{}, err
	}
	sh.Revision = revision
	if revoked != nil {
		sh.RevokedAt = *revoked
	}
	return sh, nil
}

// NewShare is what CreateShare needs.
type NewShare struct {
	UserID, JobID string
	TokenHash     []byte // sharetoken.Hash of the link's token
	Revision      *int
	Now           time.Time // the caller's clock: expiry is decided by it, not the database's
	ExpiresAt     time.Time
}

// CreateShare makes a share link of a job of the user's. The job must have
// finished with a transcript (job_not_finished before; a failed job has
// none: transcript_not_ready, as reading it answers; transcript_expired
// once retention deleted it), have the
// revision the link pins (revision_not_found), and have fewer than
// MaxLiveShares live links (too_many_shares). Another user's job, or a
// chunk, is not_found.
func (s *Store) CreateShare(ctx context.Context, n NewShare) (Share, error) {
	notFound := &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", n.JobID)}
	if _, err := uuid.Parse(n.JobID); err != nil || n.UserID == "" {
		return Share{}, notFound
	}
	var sh Share
	err := s.inTx(ctx, "create share", func(tx sqldb.Tx) error {
		var (
			status  job.Status
			expired bool
			latest  int
		)
		// The job's row is locked, so two links made at once count each other.
		err := tx.QueryRow(ctx, `SELECT status, transcript_expired, revision FROM jobs WHERE id = $1 AND user_id = $2 AND parent_id IS NULL FOR UPDATE`,
			n.JobID, n.UserID).Scan(&status, &expired, &latest)
		if errors.Is(err, sqldb.ErrNoRows) {
			return notFound
		}
		if err != nil {
			return fmt.Errorf("create share: %w", err)
		}
		switch {
		case !status.Terminal():
			return job.Errorf(errcode.JobNotFinished, "job %s is %s: it can be shared once it has finished", n.JobID, status)
		case status == job.StatusFailed:
			return job.Errorf(job.CodeNotReady, "job %s failed: it has no transcript to share", n.JobID)
		case expired:
			return job.Errorf(job.CodeExpired, "job %s's transcript was deleted when its retention period ended", n.JobID)
		case n.Revision != nil && *n.Revision > latest:
			// Revisions are never deleted one by one: one that exists now
			// exists for as long as the transcript does.
			return job.Errorf(errcode.RevisionNotFound, "job %s has no revision %d; its latest is %d", n.JobID, *n.Revision, latest)
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM shares WHERE job_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
			n.JobID, n.Now).Scan(&live); err != nil {
			return fmt.Errorf("create share: %w", err)
		}
		if live >= MaxLiveShares {
			return job.Errorf(errcode.TooManyShares, "job %s has %d live share links, the most it may have: revoke one first", n.JobID, live)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM shares WHERE job_id = $1 AND (revoked_at IS NOT NULL OR expires_at <= $2)
			AND id NOT IN (SELECT id FROM shares WHERE job_id = $1 AND (revoked_at IS NOT NULL OR expires_at <= $2) ORDER BY created_at DESC LIMIT $3)`,
			n.JobID, n.Now, keptDeadShares-1); err != nil {
			return fmt.Errorf("create share: drop old links: %w", err)
		}
		sh, err = scanShare(tx.QueryRow(ctx, `INSERT INTO shares (job_id, user_id, token_hash, revision, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+shareColumns, n.JobID, n.UserID, n.TokenHash, n.Revision, n.Now, n.ExpiresAt))
		if err != nil {
			return fmt.Errorf("create share: %w", err)
		}
		return nil
	})
	return sh, err
}

// ListShares returns the share links of a job of the user's, newest first:
// live, revoked and expired ones.
func (s *Store) ListShares(ctx context.Context, userID, jobID string) ([]Share, error) {
	if err := s.ownJob(ctx, userID, jobID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+shareColumns+` FROM shares WHERE job_id = $1 ORDER BY created_at DESC, id`, jobID)
	out, err := sqldb.Collect(rows, err, scanShare)
	if err != nil {
		return nil, fmt.Errorf("list shares of %s: %w", jobID, err)
	}
	return out, nil
}

// RevokeShare revokes a share link of a job of the user's, at now; revoking
// it again changes nothing. A link that is not the job's, or a job that is
// not the user's, is not_found.
func (s *Store) RevokeShare(ctx context.Context, userID, jobID, shareID string, now time.Time) error {
	if err := s.ownJob(ctx, userID, jobID); err != nil {
		return err
	}
	if _, err := uuid.Parse(shareID); err != nil {
		return job.Errorf(job.CodeNotFound, "job %s has no share link %.40q", jobID, shareID)
	}
	var id string
	err := s.db.QueryRow(ctx, `UPDATE shares SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND job_id = $2 RETURNING id::text`,
		shareID, jobID, now).Scan(&id)
	if errors.Is(err, sqldb.ErrNoRows) {
		return job.Errorf(job.CodeNotFound, "job %s has no share link %s", jobID, shareID)
	}
	if err != nil {
		return fmt.Errorf("revoke share %s: %w", shareID, err)
	}
	return nil
}

// ownJob is nil when jobID is a job (not a chunk) of userID's, else not_found.
func (s *Store) ownJob(ctx context.Context, userID, jobID string) error {
	notFound := &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", jobID)}
	if _, err := uuid.Parse(jobID); err != nil || userID == "" {
		return notFound
	}
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM jobs WHERE id = $1 AND user_id = $2 AND parent_id IS NULL`, jobID, userID).Scan(&one)
	if errors.Is(err, sqldb.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("find job %s: %w", jobID, err)
	}
	return nil
}

// ErrShareNotFound is every reason a share link does not open — unknown,
// expired, revoked, its job deleted — as one answer, so a caller learns
// nothing about which.
var ErrShareNotFound = &job.Error{Code: errcode.ShareNotFound, Message: sharetoken.NotFoundMessage}

// ResolveShare returns the live share link whose token hashes to hash at
// now, or ErrShareNotFound.
func (s *Store) ResolveShare(ctx context.Context, hash []byte, now time.Time) (Share, error) {
	sh, err := scanShare(s.db.QueryRow(ctx, `SELECT `+shareColumns+` FROM shares
		WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2`, hash, now))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Share{}, ErrShareNotFound
	}
	if err != nil {
		return Share{}, fmt.Errorf("resolve share: %w", err)
	}
	return sh, nil
}
