package sqldb_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

var param = regexp.MustCompile(`\$(\d+)`)

// TestGoldenStatementsCompileOnSQLite: the SQLite half of every golden case
// is SQL SQLite accepts against the real schema — a golden file records what
// Translate does, and this says it is worth doing. EXPLAIN compiles a
// statement without running it (with every parameter NULL).
func TestGoldenStatementsCompileOnSQLite(t *testing.T) {
	t.Parallel()
	db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "golden.db"))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	ctx := context.Background()
	_, err = migrations.Migrate(ctx, db)
	require.NoError(t, err)
	for _, c := range sqldb.ReadGolden(t) {
		// The driver translates again; a golden SQLite text is settled (the
		// fuzz test checks translating twice changes nothing).
		args := make([]any, 0, 16)
		for _, m := range param.FindAllStringSubmatch(c.SQLite, -1) {
			n, _ := strconv.Atoi(m[1])
			for len(args) < n {
				args = append(args, nil)
			}
		}
		rows, err := db.Query(ctx, "EXPLAIN "+c.SQLite, args...)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		require.NoError(t, err, "case %q:\n%s", c.Name, c.SQLite)
	}
}

// TestOpenSQLiteRegistersPostgresFunctions: the functions the schema and the
// store call exist on a connection OpenSQLite opens, the second time too
// (registration happens once per process).
func TestOpenSQLiteRegistersPostgresFunctions(t *testing.T) {
	t.Parallel()
	for range 2 {
		db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "f.db"))
		require.NoError(t, err)
		var now, month, next int64
		var id, secret string
		err = db.QueryRow(context.Background(), `SELECT now(), gen_random_uuid(), new_webhook_secret(),
			month_start(1700000000000000), next_month(1700000000000000)`).Scan(&now, &id, &secret, &month, &next)
		db.Close()
		require.NoError(t, err)
		require.Positive(t, now)
		require.Len(t, id, 36)
		require.Regexp(t, `^whsec_`, secret)
		require.Equal(t, int64(1698796800000000), month, "2023-11-01T00:00:00Z")
		require.Equal(t, int64(1701388800000000), next, "2023-12-01T00:00:00Z")
	}
}
