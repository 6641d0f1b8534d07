package sqldb_test

import (
	"context"
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
	for _, h := range handles {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, _ := h.open(t)
			_, err := db.Exec(ctx, `CREATE TABLE kv (k text PRIMARY KEY, v bigint NOT NULL)`)
			require.NoError(t, err)

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
}
