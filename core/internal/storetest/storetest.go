// Package storetest runs a test against the store on each database driver —
// PostgreSQL for clusters and SQLite for the single box — so every package
// that keeps state (the store itself, notify, retention, the fetch stage) is
// tested on the default path as well as on the cluster path.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

// Driver opens a fresh, empty database of one kind for a test.
type Driver struct {
	Name string // "postgres" or "sqlite": the subtest's name
	Open func(t testing.TB) sqldb.DB
}

// Drivers are both of core's databases: a fresh PostgreSQL database on the
// test server (see pgtest) and an SQLite file in the test's temp directory.
var Drivers = []Driver{
	{"postgres", func(t testing.TB) sqldb.DB { return sqldb.FromPool(pgtest.Pool(t)) }},
	{"sqlite", func(t testing.TB) sqldb.DB {
		t.Helper()
		db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "ytcaption.db"))
		if err != nil {
			t.Fatalf("storetest: open sqlite: %v", err)
		}
		t.Cleanup(db.Close)
		return db
	}},
}

// Env is one driver's migrated database, its store and a user.
type Env struct {
	DB    sqldb.DB
	Store *store.Store
	User  store.User // "alice", an ordinary user
}

// Maker opens a new Env; a test may open several (two replicas' stores
// open one each on their own databases).
type Maker func(t testing.TB) Env

// ForEachDriver runs test once per driver, as subtests named after it.
func ForEachDriver(t *testing.T, test func(t *testing.T, open Maker)) {
	t.Helper()
	for _, d := range Drivers {
		t.Run(d.Name, func(t *testing.T) { test(t, func(t testing.TB) Env { return New(t, d) }) })
	}
}

// New opens d's database, migrates it and makes the user alice.
func New(t testing.TB, d Driver) Env {
	t.Helper()
	db := d.Open(t)
	if _, err := migrations.Migrate(context.Background(), db); err != nil {
		t.Fatalf("storetest: migrate %s: %v", d.Name, err)
	}
	s := store.New(db)
	u, err := s.EnsureUser(context.Background(), "alice", store.RoleUser)
	if err != nil {
		t.Fatalf("storetest: ensure user on %s: %v", d.Name, err)
	}
	return Env{DB: db, Store: s, User: u}
}
