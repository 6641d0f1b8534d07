package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// BatchFilter narrows a search of every user's batches (the admin API's);
// zero fields match everything.
type BatchFilter struct {
	UserID string
	Status string // one of the Batch* states
	// Before is the id of the previous page's last batch: the page holds
	// older ones.
	Before string
	Limit  int // default 50, at most 500
}

// SearchBatches finds batches of any user, newest first, with their counts.
func (s *Store) SearchBatches(ctx context.Context, f BatchFilter) ([]Batch, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	if f.UserID != "" {
		if _, err := uuid.Parse(f.UserID); err != nil {
			return nil, job.Errorf(job.CodeInvalidArgument, "user %q is not a user id", f.UserID)
		}
	}
	switch f.Status {
	case "", BatchEnumerating, BatchRunning, BatchDone, BatchFailed, BatchCancelled:
	default:
		return nil, job.Errorf(job.CodeInvalidArgument, "unknown batch status %q", f.Status)
	}
	after := cursor{CreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	if f.Before != "" {
		prior, err := s.GetBatch(ctx, "", f.Before)
		if err != nil {
			return nil, job.Errorf(job.CodeInvalidArgument, "the page token is not a batch")
		}
		after = cursor{CreatedAt: prior.CreatedAt, ID: prior.ID}
	}
	rows, err := s.db.Query(ctx, `SELECT `+batchColumns+` FROM batches
		WHERE ($1 = '' OR user_id::text = $1) AND ($2 = '' OR status = $2) AND (created_at, id) < ($3, $4::uuid)
		ORDER BY created_at DESC, id DESC LIMIT $5`,
		f.UserID, f.Status, after.CreatedAt, after.ID, f.Limit)
	bs, err := sqldb.Collect(rows, err, func(r sqldb.Row) (Batch, error) { return scanBatch(r) })
	if err != nil {
		return nil, fmt.Errorf("search batches: %w", err)
	}
	for i := range bs {
		if bs[i].Counts, err = s.BatchCounts(ctx, bs[i].ID); err != nil {
			return nil, err
		}
	}
	return bs, nil
}

// UnfinishedBatches counts the batches being enumerated and running, for
// the dashboard's overview: each state has a partial index of its own, so
// the count reads only those batches.
func (s *Store) UnfinishedBatches(ctx context.Context) (enumerating, running int, err error) {
	err = s.db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM batches WHERE status = 'enumerating'),
			(SELECT count(*) FROM batches WHERE status = 'running')`).Scan(&enumerating, &running)
	if err != nil {
		return 0, 0, fmt.Errorf("count unfinished batches: %w", err)
	}
	return enumerating, running, nil
}
