package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Unlimited is a quota with no limit (like a rate limit of 0, which means
// the deployment's default: the zero value never blocks anybody).
const Unlimited = 0

// Usage is where a user stands against their quotas this month (UTC).
type Usage struct {
	MonthlyMinutes int // the effective limit: the user's override, else the plan's; Unlimited
	MaxConcurrent  int // likewise
	// UsedMS is the audio of this month's succeeded jobs (the ledger);
	// PendingMS the known audio of the user's running jobs.
	UsedMS, PendingMS int64
	Active            int // running jobs (queued to transcribing)
	ResetsAt          time.Time
}

// RemainingMS is what the month still allows, never below 0; for an
// unlimited quota it is -1.
func (u Usage) RemainingMS() int64 {
	if u.MonthlyMinutes == Unlimited {
		return -1
	}
	return max(0, int64(u.MonthlyMinutes)*60_000-u.UsedMS-u.PendingMS)
}

// activeStatuses are the states a job counts against the concurrency quota in.
var activeStatuses = []string{string(job.StatusQueued), string(job.StatusDownloading), string(job.StatusReady), string(job.StatusTranscribing)}

// usageColumns are the usage of user u on plan p, with $1 the active
// statuses: one text for one user and for all of them, so the two cannot
// disagree. Its subqueries are correlated, an index lookup per user.
const usageColumns = `
	COALESCE(u.monthly_minutes, p.monthly_minutes, 0), COALESCE(u.max_concurrent, p.max_concurrent, 0),
	(SELECT COALESCE(sum(audio_ms), 0)::bigint FROM usage_ledger l
		WHERE l.user_id = u.id AND l.month = month_start(now())),
	(SELECT COALESCE(sum(media_duration_ms), 0)::bigint FROM jobs j
		WHERE j.user_id = u.id AND j.parent_id IS NULL AND j.status = ANY($1)),
	(SELECT count(*) FROM jobs j WHERE j.user_id = u.id AND j.parent_id IS NULL AND j.status = ANY($1)),
	next_month(now())`

// usageQuery reads the usage of the user $2.
const usageQuery = `SELECT ` + usageColumns + ` FROM users u JOIN plans p ON p.name = u.plan WHERE u.id = $2`

func usageDest(u *Usage) []any {
	return []any{&u.MonthlyMinutes, &u.MaxConcurrent, &u.UsedMS, &u.PendingMS, &u.Active, &u.ResetsAt}
}

func scanUsage(row sqldb.Row) (Usage, error) {
	var u Usage
	err := row.Scan(usageDest(&u)...)
	return u, err
}

// GetUsage returns where the user stands this month.
func (s *Store) GetUsage(ctx context.Context, userID string) (Usage, error) {
	u, err := scanUsage(s.db.QueryRow(ctx, usageQuery, activeStatuses, userID))
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", userID, err)
	}
	return u, nil
}

// ListUsage returns where every user stands this month, by user id: what
// GetUsage gives each, in one query, for pages that list users.
func (s *Store) ListUsage(ctx context.Context) (map[string]Usage, error) {
	rows, err := s.db.Query(ctx, `SELECT u.id::text, `+usageColumns+` FROM users u JOIN plans p ON p.name = u.plan`, activeStatuses)
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	defer rows.Close()
	out := map[string]Usage{}
	for rows.Next() {
		var id string
		var u Usage
		if err := rows.Scan(append([]any{&id}, usageDest(&u)...)...); err != nil {
			return nil, fmt.Errorf("list usage: %w", err)
		}
		out[id] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	return out, nil
}

// quotaLimited says, of a user u on plan p, whether any quota applies.
const quotaLimited = `(COALESCE(u.monthly_minutes, p.monthly_minutes, 0) > 0 OR COALESCE(u.max_concurrent, p.max_concurrent, 0) > 0)`

// checkQuota refuses a new job when the user's month is used up or their
// concurrent jobs are at the limit. It runs in the creating transaction and,
// when the user has a quota, locks the user's row until it commits, so two
// concurrent creations cannot both take the last slot. Any failure to read
// the quota refuses the job: quotas fail closed.
func checkQuota(ctx context.Context, tx sqldb.Tx, userID string) error {
	var limited bool
	if err := tx.QueryRow(ctx, `SELECT `+quotaLimited+` FROM users u JOIN plans p ON p.name = u.plan WHERE u.id = $1`, userID).Scan(&limited); err != nil {
		return fmt.Errorf("quota of %s: %w", userID, err)
	}
	if !limited {
		return nil
	}
	// Lock first, then count in a new statement: under READ COMMITTED a
	// statement that waited for the lock still counts from its own snapshot,
	// taken before the other creation committed.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
		return fmt.Errorf("quota of %s: %w", userID, err)
	}
	u, err := scanUsage(tx.QueryRow(ctx, usageQuery, activeStatuses, userID))
	if err != nil {
		return fmt.Errorf("quota of %s: %w", userID, err)
	}
	switch {
	case u.MaxConcurrent != Unlimited && u.Active >= u.MaxConcurrent:
		return job.Errorf(job.CodeQuotaExceeded, "%d of %d concurrent jobs are running: wait for one to finish", u.Active, u.MaxConcurrent)
	case u.MonthlyMinutes != Unlimited && u.RemainingMS() == 0:
		return job.Errorf(job.CodeQuotaExceeded, "this month's %d audio minutes are used up (%.1f used, %.1f in running jobs, 0 remain); the quota resets at %s",
			u.MonthlyMinutes, float64(u.UsedMS)/60_000, float64(u.PendingMS)/60_000, u.ResetsAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckQuota refuses, as a new job's creation would, when the user's month
// is used up or their concurrent jobs are at the limit: for work that must
// be refused before it costs anything (an upload before its blob is
// stored). Creating the job checks again, in its own transaction.
func (s *Store) CheckQuota(ctx context.Context, userID string) error {
	return s.inTx(ctx, "check quota", func(tx sqldb.Tx) error { return checkQuota(ctx, tx, userID) })
}

// UsageRow is one user's usage in one month.
type UsageRow struct {
	UserID, UserName string
	Month            time.Time // the first day, UTC
	Jobs             int
	AudioMS          int64
}

// UsageReport sums the ledger per user and month for months from..to
// (inclusive, any day in them), the biggest users first within a month.
func (s *Store) UsageReport(ctx context.Context, from, to time.Time) ([]UsageRow, error) {
	rows, err := s.db.Query(ctx, `
		SELECT l.user_id::text, u.name, l.month, count(*)::int, sum(l.audio_ms)::bigint
		FROM usage_ledger l JOIN users u ON u.id = l.user_id
		WHERE l.month BETWEEN month_start($1) AND month_start($2)
		GROUP BY l.user_id, u.name, l.month ORDER BY l.month DESC, 5 DESC, u.name`, from, to)
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (UsageRow, error) {
		var u UsageRow
		err := r.Scan(&u.UserID, &u.UserName, &u.Month, &u.Jobs, &u.AudioMS)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", err)
	}
	return out, nil
}
