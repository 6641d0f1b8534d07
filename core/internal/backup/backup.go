// Package backup copies core's state — the database and the blobs — to a
// directory and back, on both of core's deployments. The copy is
// consistent: blobs are written before any row names them, and while a
// backup runs the retention sweeper deletes none, so every blob the database
// copy refers to is in the backup (blobs stored after it are extra, and
// harmless).
//
// On PostgreSQL and S3 the database goes through pg_dump and pg_restore
// (custom format): the tools every Postgres operator knows, whose output can
// be restored without us. It runs beside a live core.
//
// On the single box (SQLite and a blob directory) the database is copied with
// SQLite's VACUUM INTO: one self-contained file, the same kind the box runs
// on, that the sqlite3 shell opens too — one read transaction's snapshot, so
// it may be taken while the box runs, from a read-only connection of another
// process. The box's blob deletions are held off through a lock file in the
// data directory (store.BackupLockFile): SQLite's advisory locks are the
// box's process's own. A restore writes a new data directory rather than
// overwriting one.
package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// Manifest describes a backup; it is written last, so a directory without
// one holds no complete backup.
type Manifest struct {
	Taken time.Time `json:"taken"`
	Blobs int       `json:"blobs"`
	// Database is the kind of database copy: "postgres" (pg_dump) or
	// "sqlite" (a database file). Backups from before it are "postgres".
	Database sqldb.Dialect `json:"database,omitempty"`
}

const (
	dumpFile     = "postgres.dump"
	sqliteFile   = "ytcaption.db"
	blobsDir     = "blobs"
	manifestFile = "manifest.json"
)

// Backup writes the PostgreSQL database at pgURL and every blob to dir,
// which must not hold a backup yet.
func Backup(ctx context.Context, pgURL string, st *store.Store, blobs blob.Store, dir string) (Manifest, error) {
	return write(ctx, sqldb.Postgres, st, blobs, dir, func() error {
		if out, err := exec.CommandContext(ctx, "pg_dump", "--format=custom", "--no-owner", "--file", filepath.Join(dir, dumpFile), pgURL).CombinedOutput(); err != nil {
			return fmt.Errorf("pg_dump: %w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	})
}

// BackupSQLite writes the single box's SQLite database db and every blob to
// dir, which must not hold a backup yet. lockFile is the box's backup lock
// file (core.BackupLockFile in its data directory), held while the backup
// runs so that a running box deletes no blob meanwhile; empty: the
// database's own lock alone, enough only when no other process uses it.
func BackupSQLite(ctx context.Context, db sqldb.DB, lockFile string, blobs blob.Store, dir string) (Manifest, error) {
	if db.Dialect() != sqldb.SQLite {
		return Manifest{}, fmt.Errorf("backup: %s is not SQLite", db.Dialect())
	}
	var opts []store.Option
	if lockFile != "" {
		opts = append(opts, store.BackupLockFile(lockFile))
	}
	return write(ctx, sqldb.SQLite, store.New(db, opts...), blobs, dir, func() error {
		// One transaction's snapshot, written as a compact database file.
		if _, err := db.Exec(ctx, `VACUUM INTO $1`, filepath.Join(dir, sqliteFile)); err != nil {
			return fmt.Errorf("copy the database: %w", err)
		}
		return nil
	})
}

// write makes dir, holds blob deletions, copies the database with dump,
// then the blobs, then writes the manifest.
func write(ctx context.Context, kind sqldb.Dialect, st *store.Store, blobs blob.Store, dir string, dump func() error) (Manifest, error) {
	if _, err := os.Stat(filepath.Join(dir, manifestFile)); err == nil {
		return Manifest{}, fmt.Errorf("%s holds a backup already", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, blobsDir), 0o700); err != nil {
		return Manifest{}, err
	}
	release, err := st.HoldForBackup(ctx)
	if err != nil {
		return Manifest{}, err
	}
	defer release()
	m := Manifest{Taken: time.Now().UTC(), Database: kind}
	if err := dump(); err != nil {
		return m, err
	}
	keys, err := listKeys(ctx, blobs)
	if err != nil {
		return m, err
	}
	for _, k := range keys {
		path := filepath.Join(dir, blobsDir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return m, err
		}
		err := blobs.GetFile(ctx, k, path)
		if errors.Is(err, job.ErrNotFound) {
			// Gone since the listing, though deletions are held: not a blob
			// the database copy names (retention deletes those, and waits),
			// but one the service removes at once — an upload's staged part,
			// say, once assembled.
			continue
		}
		if err != nil {
			return m, err
		}
		m.Blobs++
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	return m, os.WriteFile(filepath.Join(dir, manifestFile), append(b, '\n'), 0o600)
}

// listKeys lists the blobs. A blob directory that loses a subdirectory
// while it is walked (a running box removing an upload's staging) fails the
// walk: it is listed again, a few times.
func listKeys(ctx context.Context, blobs blob.Store) ([]string, error) {
	for try := 1; ; try++ {
		keys, err := blobs.Keys(ctx)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || try == 3 {
			return keys, err
		}
	}
}

// readManifest reads dir's manifest and requires a backup of kind.
func readManifest(dir string, kind sqldb.Dialect) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return m, fmt.Errorf("%s holds no complete backup: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", manifestFile, err)
	}
	if m.Database == "" {
		m.Database = sqldb.Postgres
	}
	switch {
	case m.Database == kind:
		return m, nil
	case m.Database == sqldb.SQLite:
		return m, fmt.Errorf("%s holds a single-box (SQLite) backup: restore it into a new data directory (--data-dir)", dir)
	default:
		return m, fmt.Errorf("%s holds a PostgreSQL backup: restore it into PostgreSQL (--postgres-url and the bucket)", dir)
	}
}

// Restore loads the PostgreSQL backup in dir into the database at pgURL
// (its objects replaced: run it with core stopped) and the bucket.
func Restore(ctx context.Context, pgURL string, blobs blob.Store, dir string) (Manifest, error) {
	m, err := readManifest(dir, sqldb.Postgres)
	if err != nil {
		return m, err
	}
	if out, err := exec.CommandContext(ctx, "pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
		"--dbname", pgURL, filepath.Join(dir, dumpFile)).CombinedOutput(); err != nil {
		return m, fmt.Errorf("pg_restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return m, putBlobs(ctx, m, blobs, dir)
}

// RestoreSQLite writes the single-box backup in dir as the database file
// dbPath, which must not exist (move an old data directory aside first), and
// its blobs into blobs.
func RestoreSQLite(ctx context.Context, dbPath string, blobs blob.Store, dir string) (Manifest, error) {
	m, err := readManifest(dir, sqldb.SQLite)
	if err != nil {
		return m, err
	}
	if _, err := os.Stat(dbPath); err == nil {
		return m, fmt.Errorf("%s exists: a restore writes a new data directory, so move the old one aside (with the box stopped) first", dbPath)
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return m, err
	}
	tmp := dbPath + ".restoring"
	if err := copyFile(filepath.Join(dir, sqliteFile), tmp); err != nil {
		return m, fmt.Errorf("copy the database: %w", err)
	}
	defer os.Remove(tmp)
	// A link, unlike a rename, never replaces: a box started on the new
	// directory meanwhile keeps its database and the restore fails.
	if err := os.Link(tmp, dbPath); err != nil {
		return m, fmt.Errorf("place the database: %w", err)
	}
	return m, putBlobs(ctx, m, blobs, dir)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// putBlobs stores every blob of the backup in dir and checks their number
// against the manifest.
func putBlobs(ctx context.Context, m Manifest, blobs blob.Store, dir string) error {
	root := filepath.Join(dir, blobsDir)
	n := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		n++
		return blobs.PutFile(ctx, filepath.ToSlash(rel), path, "application/octet-stream")
	})
	if err == nil && n != m.Blobs {
		err = fmt.Errorf("the backup lists %d blobs but holds %d", m.Blobs, n)
	}
	return err
}
