// Package migrations holds core's forward-only schema migrations, embedded in
// the binary — postgres/ for PostgreSQL, sqlite/ for the single-box SQLite
// store — and applies them once across replicas that start together.
//
// The two directories number their migrations independently; a schema
// change is a new file in each, never an edit of one that has run anywhere.
// TestSQLiteSchemaMatchesPostgres migrates a fresh database of each kind and
// fails when their tables, columns, column types (as SQLite stores them) or
// nullability differ.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// lockKey is the advisory lock that serialises migrations ("ytcaptio" in ASCII).
const lockKey = 0x7974636170746f

type migration struct {
	version int
	name    string
	sql     string
}

func load(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and an underscore", e.Name())
		}
		b, err := files.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// Migrate applies pending migrations of db's dialect, each in its own
// transaction, while holding an advisory lock so concurrent callers apply
// each once. It returns how many it applied.
func Migrate(ctx context.Context, db sqldb.DB) (int, error) {
	ms, err := load(string(db.Dialect()))
	if err != nil {
		return 0, err
	}
	release, _, err := db.Lock(ctx, lockKey, false, true)
	if err != nil {
		return 0, fmt.Errorf("take migration lock: %w", err)
	}
	defer release()

	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := db.Query(ctx, "SELECT version FROM schema_migrations")
	versions, err := sqldb.Collect(rows, err, sqldb.Scalar[int])
	if err != nil {
		return 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[v] = true
	}
	n := 0
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if err := apply(ctx, db, m); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func apply(ctx context.Context, db sqldb.DB, m migration) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("apply %s: %w", m.name, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
		return fmt.Errorf("record %s: %w", m.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit %s: %w", m.name, err)
	}
	return nil
}
