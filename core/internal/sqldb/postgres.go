package sqldb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// FromPool returns a DB on a pgx pool. Closing the DB closes the pool.
func FromPool(pool *pgxpool.Pool) DB { return &pgDB{pgQuerier{pool}, pool} }

// pgExecer is what a pool and a transaction share.
type pgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

type pgQuerier struct{ q pgExecer }

func (p pgQuerier) Exec(ctx context.Context, sql string, args ...any) (Result, error) {
	return p.q.Exec(ctx, sql, args...)
}

func (p pgQuerier) Query(ctx context.Context, sql string, args ...any) (Rows, error) {
	return p.q.Query(ctx, sql, args...)
}

func (p pgQuerier) QueryRow(ctx context.Context, sql string, args ...any) Row {
	return p.q.QueryRow(ctx, sql, args...)
}

func (p pgQuerier) SendBatch(ctx context.Context, b *Batch) error {
	pb := &pgx.Batch{}
	for _, it := range b.items {
		q := pb.Queue(it.sql, it.args...)
		switch {
		case it.rows:
			q.Query(func(rows pgx.Rows) error {
				for rows.Next() {
					if err := it.row(rows); err != nil {
						return err
					}
				}
				return rows.Err()
			})
		case it.row != nil:
			q.QueryRow(func(r pgx.Row) error { return it.row(r) })
		}
	}
	// Outside a transaction the batch is PostgreSQL's implicit one: pgx ends
	// it with a single Sync.
	return p.q.SendBatch(ctx, pb).Close()
}

type pgDB struct {
	pgQuerier
	pool *pgxpool.Pool
}

func (d *pgDB) Dialect() Dialect               { return Postgres }
func (d *pgDB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }
func (d *pgDB) Close()                         { d.pool.Close() }

func (d *pgDB) Begin(ctx context.Context) (Tx, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgTx{pgQuerier{tx}, tx}, nil
}

type pgTx struct {
	pgQuerier
	tx pgx.Tx
}

func (t pgTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// Lock holds a session advisory lock on a connection of its own, outside
// the pool: waiters must not take the pooled connections the holder needs.
func (d *pgDB) Lock(ctx context.Context, key int64, shared, wait bool) (func(), bool, error) {
	conn, err := d.session(ctx)
	if err != nil {
		return nil, false, err
	}
	fn := map[[2]bool]string{
		{false, true}: "pg_advisory_lock", {true, true}: "pg_advisory_lock_shared",
		{false, false}: "pg_try_advisory_lock", {true, false}: "pg_try_advisory_lock_shared",
	}[[2]bool{shared, wait}]
	ok := true
	if wait {
		_, err = conn.Exec(ctx, `SELECT `+fn+`($1)`, key)
	} else {
		err = conn.QueryRow(ctx, `SELECT `+fn+`($1)`, key).Scan(&ok)
	}
	if err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, false, err
	}
	// Closing the session releases its locks.
	return func() { _ = conn.Close(context.WithoutCancel(ctx)) }, true, nil
}

// session opens a connection of its own, outside the pool, for state that
// lives as long as a session (advisory locks, LISTEN) and must neither leak
// to the pool's other users nor take a pooled connection for good.
func (d *pgDB) session(ctx context.Context) (*pgx.Conn, error) {
	return pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig.Copy())
}

func (d *pgDB) TryLockSession(ctx context.Context, key int64) (LockSession, bool, error) {
	conn, err := d.session(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("connect: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, false, err
	}
	return &pgLockSession{conn: conn, key: key}, true, nil
}

type pgLockSession struct {
	conn *pgx.Conn
	key  int64
}

// Alive pings the session's connection: a session lock lives exactly as
// long as its session, so a connection that answers still holds it.
func (s *pgLockSession) Alive(ctx context.Context) error { return s.conn.Ping(ctx) }

// Release unlocks before closing: closing alone releases the lock too, but
// only once the server notices, and a follower should not wait for that.
func (s *pgLockSession) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, s.key)
	_ = s.conn.Close(ctx)
}

func (d *pgDB) Notify(ctx context.Context, channel string, payloads ...string) error {
	if len(payloads) == 1 {
		_, err := d.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payloads[0])
		return err
	}
	_, err := d.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i`, channel, payloads)
	return err
}

// Listen LISTENs on a connection of its own; the subscription is in place
// when it returns.
func (d *pgDB) Listen(ctx context.Context, channel string) (Listener, error) {
	l := &pgListener{db: d, channel: channel}
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

type pgListener struct {
	db      *pgDB
	channel string
	conn    *pgx.Conn // nil after a failure, until Next reconnects
}

func (l *pgListener) connect(ctx context.Context) error {
	conn, err := l.db.session(ctx)
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("listen %s: %w", l.channel, err)
	}
	l.conn = conn
	return nil
}

func (l *pgListener) Next(ctx context.Context) (Notification, error) {
	if l.conn == nil {
		if err := l.connect(ctx); err != nil {
			return Notification{}, err
		}
		return Notification{Lost: true}, nil
	}
	n, err := l.conn.WaitForNotification(ctx)
	if err != nil {
		// Whether the connection died or ctx ended mid-wait, pgx leaves it
		// unusable: drop it and reconnect on the next call.
		_ = l.conn.Close(context.WithoutCancel(ctx))
		l.conn = nil
		return Notification{}, fmt.Errorf("wait for notification: %w", err)
	}
	return Notification{Payload: n.Payload}, nil
}

func (l *pgListener) Close() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.conn.Close(ctx)
		l.conn = nil
	}
}

// IsRefusal reports an error the database answered a statement with, from
// either driver: the statement's transaction then committed nothing. Any
// other error (a lost connection, a context's end) leaves it unknown
// whether the transaction committed.
func IsRefusal(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) || isSQLiteError(err)
}

// IsCheckViolation reports a CHECK constraint's refusal, from either driver.
func IsCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23514"
	}
	return isSQLiteCheckViolation(err)
}
