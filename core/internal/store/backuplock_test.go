package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestBackupLockFileHoldsOffAnotherProcesssDeletions: on the single box a
// backup runs in another process than the box (ytcaption-core backup
// --data-dir beside ytcaption-dev), and SQLite's advisory locks are each
// process's own. Two databases opened apart stand for the two processes:
// without the lock file the box would delete blobs under the backup; with
// it, it waits, and a backup waits for a deletion pass under way.
func TestBackupLockFileHoldsOffAnotherProcesssDeletions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path, lock := filepath.Join(dir, "ytcaption.db"), filepath.Join(dir, "backup.lock")
	db, err := sqldb.OpenSQLite(path)
	require.NoError(t, err)
	defer db.Close()
	_, err = migrations.Migrate(ctx, db)
	require.NoError(t, err)
	reader, err := sqldb.OpenSQLiteReader(path)
	require.NoError(t, err)
	defer reader.Close()

	// The attack on consistency: process-local locks alone do not see the
	// other process's backup.
	unaware := store.New(reader)
	hold, err := unaware.HoldForBackup(ctx)
	require.NoError(t, err)
	release, ok, err := store.New(db).AllowBlobDeletions(ctx)
	require.NoError(t, err)
	require.True(t, ok, "without the lock file the box cannot tell a backup runs")
	release()
	hold()

	box, backup := store.New(db, store.BackupLockFile(lock)), store.New(reader, store.BackupLockFile(lock))
	hold, err = backup.HoldForBackup(ctx)
	require.NoError(t, err)
	_, ok, err = box.AllowBlobDeletions(ctx)
	require.NoError(t, err)
	require.False(t, ok, "the other process's backup holds deletions off")
	hold()
	release, ok, err = box.AllowBlobDeletions(ctx)
	require.NoError(t, err)
	require.True(t, ok, "deletions resume once the backup is done")
	r2, ok, err := box.AllowBlobDeletions(ctx)
	require.NoError(t, err)
	require.True(t, ok, "deleters share")
	r2()

	// A deletion pass under way: the backup waits for it (here until its
	// context ends), then gets the lock once the pass is over.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = backup.HoldForBackup(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a backup does not start while blobs are being deleted")
	release()
	hold, err = backup.HoldForBackup(ctx)
	require.NoError(t, err)
	hold()
}

// TestSQLiteReaderCopiesButNeverWrites: the read-only connection a backup
// of a running box uses takes VACUUM INTO's snapshot and refuses writes.
func TestSQLiteReaderCopiesButNeverWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ytcaption.db")
	db, err := sqldb.OpenSQLite(path)
	require.NoError(t, err)
	defer db.Close()
	_, err = migrations.Migrate(ctx, db)
	require.NoError(t, err)
	_, err = store.New(db).EnsureUser(ctx, "alice", store.RoleUser)
	require.NoError(t, err)

	_, err = sqldb.OpenSQLite(path)
	require.ErrorIs(t, err, sqldb.ErrInUse, "the box holds its database")
	reader, err := sqldb.OpenSQLiteReader(path)
	require.NoError(t, err)
	defer reader.Close()
	_, err = reader.Exec(ctx, `INSERT INTO users (id, name, role) VALUES ('x', 'mallory', 'admin')`)
	require.ErrorContains(t, err, "readonly")
	copyPath := filepath.Join(dir, "copy.db")
	_, err = reader.Exec(ctx, `VACUUM INTO $1`, copyPath)
	require.NoError(t, err)
	_, err = sqldb.OpenSQLiteReader(filepath.Join(dir, "missing.db"))
	require.Error(t, err, "a reader never creates a database")

	cp, err := sqldb.OpenSQLite(copyPath)
	require.NoError(t, err)
	defer cp.Close()
	var n int
	require.NoError(t, cp.QueryRow(ctx, `SELECT count(*) FROM users WHERE name = 'alice'`).Scan(&n))
	require.Equal(t, 1, n)
}
