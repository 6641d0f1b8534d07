package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/gather"
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

// unlimited holds when the user (an SQL expression) has no quota: their job
// needs no count of running jobs or minutes, and no lock on their row.
func unlimited(user string) string {
	return `NOT EXISTS (SELECT 1 FROM users u JOIN plans p ON p.name = u.plan WHERE u.id = ` + user + ` AND ` + quotaLimited + `)`
}

// insertMany creates any number of jobs without a key in one statement: its
// parameters are newJobValues', each an array with a value per job
// (manyArgs), and it returns the jobs whose users have no quota. One
// statement rather than one per job: the database parses, plans and runs a
// statement once for the lot. With a statement each, the store's creations
// ran at 0.50–0.56 of plain SQL's rate on PostgreSQL (one row a statement),
// with this one at 0.89–1.17 (make bench-create). The columns are spelled
// out, not built, so that the translation tests read them.
var insertMany = `INSERT INTO jobs (` + newJobColumns + `)
	SELECT v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, v16, v17, v18, v19, v20, v21
	FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[],
		$11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::boolean[], $17::int[], $18::int[], $19::jsonb[],
		$20::boolean[], $21::boolean[]) AS v(v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, v16, v17, v18, v19, v20, v21)
	WHERE ` + unlimited("v2") + ` RETURNING ` + createdColumns

// createdColumns are what a creation reads back of the row it inserted
// (inserted); the rest of its job is what it asked for.
const createdColumns = `id, created_at, updated_at`

// inserted is what a creation reads back of its row: createdColumns.
type inserted struct {
	id               string
	created, updated time.Time
}

func scanInserted(r sqldb.Row) (inserted, error) {
	var in inserted
	err := r.Scan(&in.id, &in.created, &in.updated)
	return in, err
}

// job is the job n made, its row in. Every column but createdColumns and
// n's takes its default, the zero value, so reading the whole row back
// only cost the database and scanJob work (scanJob alone took 5 % of a
// saturated stack's CPU); TestACreatedJobIsAsStored holds it to the row.
func (in inserted) job(n NewJob) job.Job {
	j := job.Job{ID: in.id, Status: job.StatusQueued, UserID: n.UserID, URL: n.URL, CanonicalURL: n.CanonicalURL, SourceKind: n.SourceKind,
		Source: n.Source, Language: n.Language, Engine: n.Engine, Model: n.Model, Task: n.Task, Prompt: n.Prompt,
		Speakers: n.Speakers, MinSpeakers: n.MinSpeakers, MaxSpeakers: n.MaxSpeakers,
		Guards: job.Guards{Silence: n.SilenceGuard, Repetition: n.RepetitionGuard}, MaxAttempts: n.MaxAttempts, TraceParent: n.TraceParent,
		CreatedAt: in.created, UpdatedAt: in.updated}
	if len(n.Vocabulary) > 0 {
		j.Vocabulary = slices.Clone(n.Vocabulary)
	}
	return j
}

// manyArgs are insertMany's arguments for cs: column by column, the
// values of each creation's newJobArgs, in a slice of their own type (a
// []any costs pgx a reflected encoding plan per value).
func manyArgs(cs []*creation) []any {
	args := make([]any, len(cs[0].args))
	for k := range args {
		switch cs[0].args[k].(type) {
		case string:
			args[k] = column[string](cs, k)
		case int:
			args[k] = column[int](cs, k)
		case bool:
			args[k] = column[bool](cs, k)
		default:
			args[k] = column[any](cs, k)
		}
	}
	return args
}

// column is the k-th of newJobArgs of each of cs.
func column[T any](cs []*creation, k int) []T {
	col := make([]T, len(cs))
	for i, c := range cs {
		col[i] = c.args[k].(T)
	}
	return col
}

// newIDs returns n random (version 4) UUIDs made from one read of the
// system's randomness: uuid.NewString reads it for each, a system call
// that took 4 % of the stack's CPU at saturated creations.
func newIDs(n int) []string {
	b := make([]byte, 16*n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	ids := make([]string, n)
	for i := range ids {
		var u uuid.UUID
		copy(u[:], b[16*i:])
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		ids[i] = u.String()
	}
	return ids
}

// await waits for c's batch: whether it created c's job (ok false, no
// error: the transaction must decide).
func (c *creation) await(ctx context.Context) (job.Job, bool, error) {
	select {
	case <-c.done:
		return c.j, c.ok, c.err
	case <-ctx.Done():
		// The creation may still happen, as when a statement's context
		// ends after the server committed it.
		return job.Job{}, false, ctx.Err()
	}
}

// Created is one of CreateJobsOnce's answers: CreateJobOnce's.
type Created struct {
	Job      job.Job
	Replayed bool
	Err      error
}

// CreateJobsOnce is CreateJobOnce for each of ns, all at once: the
// creations that need no transaction join the group commit together, so
// they go in one batch (a call's creations used to arrive from goroutines
// microseconds apart, the first alone, and the store's batches averaged 5
// creations at saturation); the rest take the transaction side by side.
func (s *Store) CreateJobsOnce(ctx context.Context, ns []NewJob) []Created {
	out := make([]Created, len(ns))
	cs := make([]*creation, len(ns))
	var fast []*creation
	for i, n := range ns {
		if cs[i] = s.fastCreation(n.withDefaults()); cs[i] != nil {
			fast = append(fast, cs[i])
		}
	}
	// Most creations take one statement and no transaction (fastCreation);
	// the rest — a user with a quota, a key seen before — take the
	// transaction (createInTx).
	s.creations.Add(fast...)
	var wg sync.WaitGroup
	for i, c := range cs {
		if c != nil {
			j, ok, err := c.await(ctx)
			if err != nil {
				out[i].Err = fmt.Errorf("create job: %w", err)
			}
			if ok || err != nil {
				out[i].Job = j
				continue
			}
		}
		wg.Go(func() {
			j, replayed, err := s.createInTx(ctx, ns[i].withDefaults())
			out[i] = Created{Job: j, Replayed: replayed, Err: err}
		})
	}
	wg.Wait()
	return out
}

// fastCreation is n's creation in one statement when nothing needs
// deciding first: a user without a quota, and a key (if any) not used
// before; nil when n must take the transaction. The statement checks both
// itself, so no caller's belief about the user's quota is trusted: a quota
// set a moment ago makes it create nothing (ok false), and the transaction
// counts.
//
// Without a key, the creation is a row of insertMany. With a key, the key
// row and the job go in together, in a statement of its own: the key's
// insert feeds the job's. A concurrent request with the same key waits on
// the key's unique index for this one to commit, then inserts nothing, and
// its transaction replays this job. SQLite has no INSERT in a WITH, so
// there a key takes the transaction.
//
// The statement joins whatever other creations are waiting, in one
// transaction (see creations).
func (s *Store) fastCreation(n NewJob) *creation {
	args := newJobArgs("", n) // the id is createBatch's
	var q string
	switch {
	case n.IdempotencyKey == "":
		return &creation{n: n, args: args, many: true, done: make(chan struct{})}
	case s.db.Dialect() != sqldb.Postgres:
		return nil
	default:
		q = `WITH k AS (
				INSERT INTO idempotency_keys (user_id, key, fingerprint, job_id)
				SELECT $2::uuid, $22::text, $23::bytea, $1::uuid WHERE ` + unlimited("$2::uuid") + `
				ON CONFLICT (user_id, key) DO NOTHING RETURNING job_id)
			INSERT INTO jobs (` + newJobColumns + `) SELECT ` + newJobValues + ` FROM k RETURNING ` + createdColumns
		args = append(args, n.IdempotencyKey, n.Fingerprint)
	}
	return &creation{n: n, q: q, args: args, done: make(chan struct{})}
}

// creations is group commit for fastCreation's creations. Every creation
// is a commit, and under load PostgreSQL spends its time flushing its log
// for them one by one, SQLite its one writer's turns: so the creations
// waiting when a batch starts go in together, one transaction (sqldb.Batch:
// one round trip, one commit), through a gather.Batcher — alone, a creation
// is its own batch at once, and waits for nothing.
type creations struct {
	gather.Batcher[*creation]
	batches atomic.Int64 // sent, for tests
}

type creation struct {
	n    NewJob
	q    string // its own statement, unless many
	args []any
	many bool // one of insertMany's rows, its args newJobArgs
	j    job.Job
	ok   bool
	err  error
	done chan struct{}
}

const (
	// maxBatch bounds a batch: a larger one holds its first creation's
	// answer for longer than its commit saves.
	maxBatch = 64
	// batchTimeout bounds a batch, whose creations' own contexts each end
	// only their wait.
	batchTimeout = 30 * time.Second
)

// newCreations sends s's creations in batches: several at once on
// PostgreSQL, which commits them together; one on SQLite, which has one
// writer.
func newCreations(s *Store) *creations {
	senders := 4
	if s.db.Dialect() == sqldb.SQLite {
		senders = 1
	}
	return &creations{Batcher: gather.Batcher[*creation]{Send: s.createBatch, Max: maxBatch, Senders: senders}}
}

// createBatch runs the creations in one transaction. When the database
// refuses one, the transaction takes the others with it, so each is sent
// again on its own; any other error (a lost connection) may have come after
// the commit, and is every creation's.
func (s *Store) createBatch(batch []*creation) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	for i, id := range newIDs(len(batch)) {
		batch[i].args[0] = id
	}
	send := func(cs []*creation) error {
		s.creations.batches.Add(1)
		var b sqldb.Batch
		var many []*creation
		for _, c := range cs {
			c.j, c.ok, c.err = job.Job{}, false, nil
			if c.many {
				many = append(many, c)
				continue
			}
			b.QueueRow(func(r sqldb.Row) error {
				in, err := scanInserted(r)
				if err == nil {
					c.j, c.ok = in.job(c.n), true
				}
				c.err = answer(err)
				return c.err
			}, c.q, c.args...)
		}
		if len(many) > 0 {
			byID := make(map[string]*creation, len(many))
			for _, c := range many {
				byID[c.args[0].(string)] = c
			}
			// A creation it does not return was its user's with a quota.
			b.QueueRows(func(r sqldb.Row) error {
				in, err := scanInserted(r)
				if c := byID[in.id]; err == nil && c != nil {
					c.j, c.ok = in.job(c.n), true
				}
				return err
			}, insertMany, manyArgs(many)...)
		}
		return s.db.SendBatch(ctx, &b)
	}
	if err := send(batch); err != nil && len(batch) > 1 && sqldb.IsRefusal(err) {
		for _, c := range batch {
			if err := send([]*creation{c}); err != nil {
				c.j, c.ok, c.err = job.Job{}, false, err
			}
		}
	} else if err != nil {
		for _, c := range batch {
			c.j, c.ok, c.err = job.Job{}, false, err
		}
	}
	for _, c := range batch {
		if c.ok {
			// Announced here, not by the caller, which may have given up
			// waiting: its job exists all the same.
			s.report(ctx, Change{JobID: c.j.ID, To: job.StatusQueued})
		}
		close(c.done)
	}
}
