package migrations_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

// TestSQLiteSchemaMatchesPostgres: the two migration directories build the
// same tables with the same columns, of the same kind of type. They number
// their files independently and the SQLite one is a hand-written copy of
// PostgreSQL's, so a column added to one alone is drift no other test sees
// until a statement naming it runs on the other database.
//
// A column's type is compared as the SQLite storage it must have — uuids,
// JSON and arrays (as JSON) are text, booleans and times (microseconds)
// integers — and so is whether it may be NULL.
func TestSQLiteSchemaMatchesPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	pg := sqldb.FromPool(pgtest.Pool(t))
	_, err := migrations.Migrate(ctx, pg)
	require.NoError(t, err)
	rows, err := pg.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'NO' FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'`)
	pgCols, err := sqldb.Collect(rows, err, scanColumn)
	require.NoError(t, err)

	lite, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "schema.db"))
	require.NoError(t, err)
	t.Cleanup(lite.Close)
	_, err = migrations.Migrate(ctx, lite)
	require.NoError(t, err)
	// SQLite lets a PRIMARY KEY that is not an INTEGER one hold NULL; the
	// store never writes one, so such a key counts as NOT NULL, as on
	// PostgreSQL.
	rows, err = lite.Query(ctx, `SELECT m.name, p.name, p.type, p."notnull" OR p.pk > 0 FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	liteCols, err := sqldb.Collect(rows, err, scanColumn)
	require.NoError(t, err)

	want := map[string]string{} // "table.column" → storage class
	for _, c := range pgCols {
		want[c.name()] = pgStorage(t, c) + nullable(c)
	}
	got := map[string]string{}
	for _, c := range liteCols {
		got[c.name()] = sqliteAffinity(c.typ) + nullable(c)
	}
	require.Greater(t, len(want), 100, "PostgreSQL's columns were read")
	// schema_migrations is Migrate's own, one CREATE for both; its
	// applied_at is CURRENT_TIMESTAMP, text on SQLite, and nothing reads it.
	want["schema_migrations.applied_at"], got["schema_migrations.applied_at"] = "-", "-"

	var drift []string
	for _, k := range sortedKeys(want) {
		switch g, ok := got[k]; {
		case !ok:
			drift = append(drift, fmt.Sprintf("%s: only in PostgreSQL", k))
		case g != want[k]:
			drift = append(drift, fmt.Sprintf("%s: %s on SQLite, should be %s", k, g, want[k]))
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			drift = append(drift, fmt.Sprintf("%s: only in SQLite", k))
		}
	}
	require.Empty(t, drift, "the SQLite schema drifted from PostgreSQL's")
}

type column struct {
	table, col, typ string
	notNull         bool
}

func (c column) name() string { return c.table + "." + c.col }

func scanColumn(r sqldb.Row) (c column, err error) {
	return c, r.Scan(&c.table, &c.col, &c.typ, &c.notNull)
}

func nullable(c column) string {
	if c.notNull {
		return " NOT NULL"
	}
	return " NULL"
}

// pgStorage is how SQLite must store a PostgreSQL column (see sqldb).
func pgStorage(t *testing.T, c column) string {
	switch c.typ {
	case "text", "character varying", "uuid", "jsonb", "json", "ARRAY":
		return "text"
	case "smallint", "integer", "bigint", "boolean", "timestamp with time zone", "date":
		return "integer"
	case "real", "double precision":
		return "real"
	case "bytea":
		return "blob"
	}
	t.Fatalf("%s is of type %s: say how SQLite stores it", c.name(), c.typ)
	return ""
}

// sqliteAffinity is a declared type's affinity, by SQLite's rules
// (https://www.sqlite.org/datatype3.html#determination_of_column_affinity).
func sqliteAffinity(declared string) string {
	d := strings.ToUpper(declared)
	switch {
	case strings.Contains(d, "INT"):
		return "integer"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "text"
	case strings.Contains(d, "BLOB"), d == "":
		return "blob"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "real"
	}
	return "numeric"
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
