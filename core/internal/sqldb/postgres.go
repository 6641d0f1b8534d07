package sqldb

import (
	"context"
	"errors"

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
		pb.Queue(it.sql, it.args...)
	}
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
	conn, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig.Copy())
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

// IsCheckViolation reports a CHECK constraint's refusal, from either driver.
func IsCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23514"
	}
	return isSQLiteCheckViolation(err)
}
