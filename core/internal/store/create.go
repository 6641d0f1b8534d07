package store

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// The columns a new job is inserted with, and their values in newJobArgs'
// order ($1 the id). The casts let the values stand in a SELECT list, where
// PostgreSQL cannot take their types from the columns (SQLite drops them).
const (
	newJobColumns = `id, user_id, status, url, canonical_url, source_kind, language, engine, model, max_attempts, source, task, prompt, webhook_url, trace_parent,
		speakers, min_speakers, max_speakers, vocabulary, silence_guard, repetition_guard`
	newJobValues = `$1::uuid, $2::uuid, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::int, $11::text, $12::text, $13::text, $14::text, $15::text,
		$16::boolean, $17::int, $18::int, $19::jsonb, $20::boolean, $21::boolean`
)

func newJobArgs(id string, n NewJob) []any {
	return []any{id, n.UserID, string(job.StatusQueued), n.URL, n.CanonicalURL, string(n.SourceKind), n.Language, n.Engine, n.Model, n.MaxAttempts,
		string(n.Source), n.Task, n.Prompt, n.WebhookURL, n.TraceParent, n.Speakers, n.MinSpeakers, n.MaxSpeakers,
		vocabularyJSON(n.Vocabulary), n.SilenceGuard, n.RepetitionGuard}
}

// unlimited holds when the user ($2) has no quota: their job needs no count
// of running jobs or minutes, and no lock on their row.
const unlimited = `NOT EXISTS (SELECT 1 FROM users u JOIN plans p ON p.name = u.plan WHERE u.id = $2::uuid AND ` + quotaLimited + `)`

// createFast creates n's job in one statement, outside any transaction,
// when nothing needs deciding first: a user without a quota, and a key (if
// any) not used before. The statement checks both itself, so no caller's
// belief about the user's quota is trusted: a quota set a moment ago sends
// the creation to the transaction, which counts. ok false: it created
// nothing, and CreateJobOnce's transaction must decide (a quota to count, a
// key to replay or refuse).
//
// PostgreSQL only: on SQLite a transaction costs no round trips. With a key,
// the key row and the job go in together, in one statement: the key's insert
// feeds the job's. A concurrent request with the same key waits on the key's
// unique index for this one to commit, then inserts nothing, and its
// transaction replays this job.
func (s *Store) createFast(ctx context.Context, n NewJob) (j job.Job, ok bool, err error) {
	if s.db.Dialect() != sqldb.Postgres {
		// SQLite's transactions cost no round trips: nothing to win, and
		// its single writer is better queued by BEGIN IMMEDIATE than by an
		// autocommit write upgrading its lock.
		return job.Job{}, false, nil
	}
	args := newJobArgs(uuid.NewString(), n)
	var q string
	switch {
	case n.IdempotencyKey == "":
		q = `INSERT INTO jobs (` + newJobColumns + `) SELECT ` + newJobValues + ` WHERE ` + unlimited + ` RETURNING ` + jobColumns
	default:
		q = `WITH k AS (
				INSERT INTO idempotency_keys (user_id, key, fingerprint, job_id)
				SELECT $2::uuid, $22::text, $23::bytea, $1::uuid WHERE ` + unlimited + `
				ON CONFLICT (user_id, key) DO NOTHING RETURNING job_id)
			INSERT INTO jobs (` + newJobColumns + `) SELECT ` + newJobValues + ` FROM k RETURNING ` + jobColumns
		args = append(args, n.IdempotencyKey, n.Fingerprint)
	}
	j, err = scanJob(s.db.QueryRow(ctx, q, args...))
	if errors.Is(err, sqldb.ErrNoRows) {
		return job.Job{}, false, nil
	}
	return j, err == nil, err
}
