package sqldb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func openLite(t *testing.T) *liteDB {
	t.Helper()
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db.(*liteDB)
}

// A statement is prepared once, whether it runs on the database or in a
// transaction, and every run does its work.
func TestSQLiteStatementsArePreparedOnceInAndOutOfTransactions(t *testing.T) {
	ctx := context.Background()
	db := openLite(t)
	_, err := db.Exec(ctx, `CREATE TABLE t (n integer NOT NULL)`)
	require.NoError(t, err)
	const insert = `INSERT INTO t (n) VALUES ($1)`
	for i := range 20 {
		_, err := db.Exec(ctx, insert, i)
		require.NoError(t, err)
		tx, err := db.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, insert, 100+i)
		require.NoError(t, err)
		var n int
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n))
		require.Equal(t, 2*i+2, n, "the transaction sees its own row")
		require.NoError(t, tx.Commit(ctx))
	}
	var sum int
	require.NoError(t, db.QueryRow(ctx, `SELECT sum(n) FROM t`).Scan(&sum))
	require.Equal(t, 190+20*100+190, sum)
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	require.Len(t, db.stmts.m, 4, "CREATE, INSERT, the count and the sum: each prepared once")
	require.Contains(t, db.stmts.m, Translate(insert))
}

// A statement prepared before the schema changed runs against the new
// schema (SQLite prepares it again by itself).
func TestSQLitePreparedStatementsFollowASchemaChange(t *testing.T) {
	ctx := context.Background()
	db := openLite(t)
	_, err := db.Exec(ctx, `CREATE TABLE t (a integer)`)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `INSERT INTO t (a) VALUES (1)`)
	require.NoError(t, err)
	const all = `SELECT * FROM t`
	var a, b int
	require.NoError(t, db.QueryRow(ctx, all).Scan(&a))
	_, err = db.Exec(ctx, `ALTER TABLE t ADD COLUMN b integer NOT NULL DEFAULT 2`)
	require.NoError(t, err)
	require.NoError(t, db.QueryRow(ctx, all).Scan(&a, &b), "the statement returns the new column")
	require.Equal(t, []int{1, 2}, []int{a, b})
}

// Past maxStmts texts the cache keeps no more, and the statements beyond
// still run; a statement that does not prepare reports its own error.
func TestSQLiteStatementCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	db := openLite(t)
	for i := range maxStmts + 10 {
		var n int
		require.NoError(t, db.QueryRow(ctx, fmt.Sprintf(`SELECT %d`, i)).Scan(&n))
		require.Equal(t, i, n)
	}
	db.stmts.mu.Lock()
	require.Len(t, db.stmts.m, maxStmts)
	db.stmts.mu.Unlock()
	_, err := db.Exec(ctx, `SELEKT 1`)
	require.ErrorContains(t, err, "syntax error")
}
