// Package sqldb is the small database interface core's store is written
// against, with two drivers: PostgreSQL (pgx) for clusters and embedded SQLite
// (modernc.org/sqlite, pure Go) for single-box installs.
//
// The store keeps one copy of its SQL, in PostgreSQL's dialect. The SQLite
// driver rewrites each statement once (see Translate) for the few constructs
// the two spell differently — array parameters and ARRAY(subquery), casts,
// row locks, intervals, a few functions — and gives SQLite the functions
// PostgreSQL has (now, gen_random_uuid, month_start…) when it first opens a
// database. testdata/translate.golden shows every rewrite rule at work. It
// stores times as integer microseconds since the epoch, converting
// time.Time arguments and scan targets, so the rules that matter (state
// transitions, leases and fencing, idempotency, quotas, the finishing
// trigger) live in one place and run on both.
package sqldb

import (
	"context"
	"database/sql"
)

// Dialect names a driver's SQL.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// ErrNoRows is what Row.Scan returns when a query matched nothing, from
// either driver (pgx.ErrNoRows wraps it too).
var ErrNoRows = sql.ErrNoRows

// Result reports what an Exec changed.
type Result interface{ RowsAffected() int64 }

// Row is one row of QueryRow.
type Row interface{ Scan(dest ...any) error }

// Rows iterates the rows of a Query; Close is safe to call twice.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs statements: a database or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (Result, error)
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) Row
	// SendBatch runs the queued statements in order, in one transaction:
	// the one it is called in, or else one of its own, which commits when
	// every statement has run. On PostgreSQL it is one round trip. The
	// first error stops it (and rolls back a transaction of its own).
	SendBatch(ctx context.Context, b *Batch) error
}

// Tx is a transaction. On SQLite every transaction takes the write lock when
// it begins (BEGIN IMMEDIATE): transactions run one at a time, which is what
// PostgreSQL's row locks (FOR UPDATE, dropped in translation) give the store.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// DB is an open database.
type DB interface {
	Querier
	Begin(ctx context.Context) (Tx, error)
	Ping(ctx context.Context) error
	Close()
	Dialect() Dialect
	// Lock takes the advisory lock key, shared or exclusive; with wait false
	// it gives up at once when the lock is taken (ok false). On PostgreSQL
	// the lock is the server's, across replicas; on SQLite, this process's
	// (one process owns a data directory).
	Lock(ctx context.Context, key int64, shared, wait bool) (release func(), ok bool, err error)
	// TryLockSession takes the exclusive advisory lock key without waiting
	// (ok false when another session holds it) and holds it until Release or
	// until its session dies, which Alive reports: leader election's lock.
	TryLockSession(ctx context.Context, key int64) (s LockSession, ok bool, err error)

	// Notify sends each payload, in order, to every listener on channel, on
	// PostgreSQL through pg_notify to every replica on the database (all of
	// them in one round trip), on SQLite to the listeners of this handle (one
	// process owns a data directory). Delivery is best effort: a listener
	// reconnecting misses what was sent meanwhile, and says so
	// (Notification.Lost).
	Notify(ctx context.Context, channel string, payloads ...string) error
	// Listen subscribes to channel: every Notify after Listen returns
	// reaches the listener, until it is closed.
	Listen(ctx context.Context, channel string) (Listener, error)
}

// LockSession is an advisory lock held by a session of its own.
type LockSession interface {
	// Alive reports an error once the lock may have been lost: on
	// PostgreSQL when its connection no longer answers (the server released
	// the lock with the session); on SQLite only once the database is closed.
	Alive(ctx context.Context) error
	// Release gives the lock up and ends the session.
	Release()
}

// Listener receives the notifications of one channel.
type Listener interface {
	// Next waits for the next notification. An error means ctx ended or
	// the connection was lost; on PostgreSQL the next call reconnects, and
	// its notification is Lost, since what was sent in between is gone.
	Next(ctx context.Context) (Notification, error)
	// Close unsubscribes; Next must not be running.
	Close()
}

// Notification is one payload, or the news that some were lost.
type Notification struct {
	Payload string
	// Lost: notifications may have been missed before this one (the
	// listener reconnected, or fell behind): look again at everything.
	// Payload is empty.
	Lost bool
}

// Batch is a list of statements for SendBatch.
type Batch struct{ items []batchItem }

type batchItem struct {
	sql  string
	args []any
	row  func(Row) error // QueueRow's or QueueRows'
	rows bool            // row reads every row, not the first
}

// Queue adds a statement.
func (b *Batch) Queue(sql string, args ...any) {
	b.items = append(b.items, batchItem{sql: sql, args: args})
}

// QueueRow adds a statement whose first row scan reads. scan must pass on
// Scan's error, which is how a failed statement shows on SQLite, but may
// take ErrNoRows (nothing matched) as an answer. An error scan returns
// fails the batch; outside a transaction, on PostgreSQL, what the batch
// wrote stands even so (it ran whole before the first row was read), so a
// scan's own error should only be a bug's.
func (b *Batch) QueueRow(scan func(Row) error, sql string, args ...any) {
	b.items = append(b.items, batchItem{sql: sql, args: args, row: scan})
}

// QueueRows adds a statement whose every row scan reads, in order; a
// statement that returns none never calls it. scan's error fails the batch,
// as QueueRow's does.
func (b *Batch) QueueRows(scan func(Row) error, sql string, args ...any) {
	b.items = append(b.items, batchItem{sql: sql, args: args, row: scan, rows: true})
}

// Len is how many statements are queued.
func (b *Batch) Len() int { return len(b.items) }

// Collect reads every row of rows with fn and closes rows. err is the
// Query's error, so that Collect(q.Query(...)) reads in one line.
func Collect[T any](rows Rows, err error, fn func(Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := fn(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Scalar reads a one-column row.
func Scalar[T any](r Row) (T, error) {
	var v T
	err := r.Scan(&v)
	return v, err
}
