package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/backup"
	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/envflag"
)

// backupCmd is `backup --out DIR` and, with restore set, `restore --from DIR`:
// the same settings as serve (database, bucket), from the same environment.
// With --data-dir they work on a stopped single box (ytcaption-dev) instead:
// its SQLite database and blob files.
func backupCmd(ctx context.Context, restore bool, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name, dirFlag, summary := "backup", "out", `ytcaption-core backup: copy the database and every blob to a new directory, consistently (blob deletions wait).
PostgreSQL is copied with pg_dump, beside a running core. A single box (ytcaption-dev) is backed up with
--data-dir, running or stopped: its SQLite database (VACUUM INTO, one snapshot) and blob files.`
	if restore {
		name, dirFlag, summary = "restore", "from", `ytcaption-core restore: load a backup into the database (its objects replaced: stop core first) and the bucket.
A single box's backup is restored with --data-dir into a new data directory (move the old one aside first).`
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	url := fs.String("postgres-url", "postgres://postgres@127.0.0.1:5432/ytcaption?sslmode=disable", "PostgreSQL connection URL")
	var bc blob.Config
	s3Flags(fs, &bc.Endpoint, &bc.AccessKey, &bc.SecretKey, &bc.Bucket)
	fs.BoolVar(&bc.UseSSL, "s3-use-ssl", false, "talk to the S3 endpoint over TLS")
	dataDir := fs.String("data-dir", "", "a single box's data directory (ytcaption-dev --data-dir): its SQLite database and blob files instead of PostgreSQL and S3")
	dir := fs.String(dirFlag, "", "the backup directory (required)")
	if err := envflag.ParseCommand(fs, "YTCAPTION_CORE", summary, args, getenv, stdout); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: --%s is required", errUsage, dirFlag)
	}
	if *dataDir != "" {
		return singleBoxBackup(ctx, restore, *dataDir, *dir, stdout)
	}
	if bc.Endpoint == "" {
		return fmt.Errorf("%w: --s3-endpoint is required (or --data-dir, for a single box)", errUsage)
	}
	blobs, err := blob.New(ctx, bc)
	if err != nil {
		return err
	}
	if restore {
		m, err := backup.Restore(ctx, *url, blobs, *dir)
		if err == nil {
			fmt.Fprintf(stdout, "restored the backup of %s: the database and %d blobs\n", m.Taken.Format("2006-01-02 15:04:05Z"), m.Blobs)
		}
		return err
	}
	pool, err := core.Connect(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := backup.Backup(ctx, *url, store.New(sqldb.FromPool(pool)), blobs, *dir)
	if err == nil {
		fmt.Fprintf(stdout, "backed up the database and %d blobs to %s\n", m.Blobs, *dir)
	}
	return err
}

// singleBoxBackup backs up, or restores into, the data directory of a
// single box. A stopped box's database is opened as the box would, so no box
// starts on it meanwhile; a running box's (it holds the database) read-only,
// beside it: VACUUM INTO copies one snapshot while the box writes on, and
// the box's blob deletions wait on the data directory's backup lock file
// until every blob is copied.
func singleBoxBackup(ctx context.Context, restore bool, dataDir, dir string, stdout io.Writer) error {
	dbPath := filepath.Join(dataDir, core.DatabaseFile)
	if restore {
		blobs, err := blob.OpenDir(filepath.Join(dataDir, core.BlobDir), "")
		if err != nil {
			return err
		}
		m, err := backup.RestoreSQLite(ctx, dbPath, blobs, dir)
		if err == nil {
			fmt.Fprintf(stdout, "restored the backup of %s into %s: the database and %d blobs\n", m.Taken.Format("2006-01-02 15:04:05Z"), dataDir, m.Blobs)
		}
		return err
	}
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("%s holds no single-box database: %w", dataDir, err)
	}
	db, err := sqldb.OpenSQLite(dbPath)
	running := errors.Is(err, sqldb.ErrInUse)
	if running {
		db, err = sqldb.OpenSQLiteReader(dbPath)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	blobs, err := blob.OpenDir(filepath.Join(dataDir, core.BlobDir), "")
	if err != nil {
		return err
	}
	m, err := backup.BackupSQLite(ctx, db, filepath.Join(dataDir, core.BackupLockFile), blobs, dir)
	if err == nil {
		state := "stopped"
		if running {
			state = "running"
		}
		fmt.Fprintf(stdout, "backed up the single box's database and %d blobs to %s (the box was %s)\n", m.Blobs, dir, state)
	}
	return err
}
