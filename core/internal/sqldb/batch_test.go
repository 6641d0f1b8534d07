package sqldb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// TestABatchIsOneTransaction: a batch sent on the database, outside any
// transaction, commits all its statements or none: a later statement that
// fails takes back an earlier one's write. QueueRow's reads see the
// batch's earlier writes, and a statement matching nothing scans ErrNoRows.
func TestABatchIsOneTransaction(t *testing.T) {
	t.Parallel()
	forEachKV(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		var b sqldb.Batch
		var got int64
		var none error
		b.Queue(`INSERT INTO kv (k, v) VALUES ('a', 1)`)
		b.QueueRow(func(r sqldb.Row) error { return r.Scan(&got) }, `UPDATE kv SET v = v + 1 WHERE k = $1 RETURNING v`, "a")
		b.QueueRow(func(r sqldb.Row) error { none = r.Scan(&got); return nil }, `SELECT v FROM kv WHERE k = $1`, "missing")
		require.NoError(t, db.SendBatch(ctx, &b))
		require.Equal(t, int64(2), got, "the second statement saw the first's insert")
		require.ErrorIs(t, none, sqldb.ErrNoRows)

		var failing sqldb.Batch
		failing.Queue(`UPDATE kv SET v = 100 WHERE k = 'a'`)
		failing.Queue(`INSERT INTO kv (k, v) VALUES ('a', 3)`) // duplicate key
		require.Error(t, db.SendBatch(ctx, &failing))
		require.NoError(t, db.QueryRow(ctx, `SELECT v FROM kv WHERE k = 'a'`).Scan(&got))
		require.Equal(t, int64(2), got, "the failed batch's first statement was rolled back")

		// A failed statement read with QueueRow fails the batch too.
		var rowFails sqldb.Batch
		rowFails.Queue(`UPDATE kv SET v = 300 WHERE k = 'a'`)
		rowFails.QueueRow(func(r sqldb.Row) error { return r.Scan(&got) }, `INSERT INTO kv (k, v) VALUES ('a', 4) RETURNING v`)
		require.Error(t, db.SendBatch(ctx, &rowFails))
		require.NoError(t, db.QueryRow(ctx, `SELECT v FROM kv WHERE k = 'a'`).Scan(&got))
		require.Equal(t, int64(2), got, "the batch with a failed read was rolled back")
	})
}

// TestQueueRowsReadsEveryRow: QueueRows hands scan each row its statement
// returns, none for a statement that returns none, and a scan's error is
// the batch's (what it wrote may stand on PostgreSQL: see QueueRow).
func TestQueueRowsReadsEveryRow(t *testing.T) {
	t.Parallel()
	forEachKV(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		var b sqldb.Batch
		var keys []string
		calls := 0
		b.QueueRows(func(r sqldb.Row) error {
			var k string
			keys = append(keys, k)
			return r.Scan(&keys[len(keys)-1])
		}, `INSERT INTO kv (k, v) SELECT k, 1 FROM unnest($1::text[]) AS t(k) WHERE true ORDER BY k RETURNING k`, []string{"a", "b", "c"})
		b.QueueRows(func(sqldb.Row) error { calls++; return nil }, `SELECT k FROM kv WHERE v > 1`)
		require.NoError(t, db.SendBatch(ctx, &b))
		require.ElementsMatch(t, []string{"a", "b", "c"}, keys, "every row inserted was read")
		require.Zero(t, calls, "a statement with no rows calls nothing")

		var failing sqldb.Batch
		refused := errors.New("no")
		failing.QueueRows(func(sqldb.Row) error { return refused }, `SELECT k FROM kv`)
		require.ErrorIs(t, db.SendBatch(ctx, &failing), refused)
	})
}

// forEachKV runs test, in parallel, on a fresh database of each kind with a
// table kv (k text, v bigint).
func forEachKV(t *testing.T, test func(t *testing.T, db sqldb.DB)) {
	for _, h := range handles {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			db, _ := h.open(t)
			_, err := db.Exec(context.Background(), `CREATE TABLE kv (k text PRIMARY KEY, v bigint NOT NULL)`)
			require.NoError(t, err)
			test(t, db)
		})
	}
}
