package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/backup"
	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/envflag"
)

// backupCmd is `backup --out DIR` and, with restore set, `restore --from DIR`:
// the same settings as serve (database, bucket), from the same environment.
func backupCmd(ctx context.Context, restore bool, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name, dirFlag, summary := "backup", "out", "ytcaption-core backup: copy the database (pg_dump) and every blob to a new directory, consistently (blob deletions wait)."
	if restore {
		name, dirFlag, summary = "restore", "from", "ytcaption-core restore: load a backup into the database (its objects replaced: stop core first) and the bucket."
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	url := fs.String("postgres-url", "postgres://postgres@127.0.0.1:5432/ytcaption?sslmode=disable", "PostgreSQL connection URL")
	var bc blob.Config
	s3Flags(fs, &bc.Endpoint, &bc.AccessKey, &bc.SecretKey, &bc.Bucket)
	fs.BoolVar(&bc.UseSSL, "s3-use-ssl", false, "talk to the S3 endpoint over TLS")
	dir := fs.String(dirFlag, "", "the backup directory (required)")
	if err := envflag.ParseCommand(fs, "YTCAPTION_CORE", summary, args, getenv, stdout); err != nil {
		return err
	}
	if *dir == "" || bc.Endpoint == "" {
		return fmt.Errorf("%w: --%s and --s3-endpoint are required", errUsage, dirFlag)
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
