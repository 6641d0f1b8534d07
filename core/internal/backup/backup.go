// Package backup copies core's state — the Postgres database and the blob
// bucket — to a directory and back. The copy is consistent: blobs are written
// before any row names them, and while a backup runs the retention sweeper
// deletes none, so every blob the database dump refers to is in the copy
// (blobs stored after the dump are extra, and harmless).
//
// The database goes through pg_dump and pg_restore (custom format): the tools
// every Postgres operator knows, whose output can be restored without us.
package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// Manifest describes a backup; it is written last, so a directory without
// one holds no complete backup.
type Manifest struct {
	Taken time.Time `json:"taken"`
	Blobs int       `json:"blobs"`
}

const (
	dumpFile     = "postgres.dump"
	blobsDir     = "blobs"
	manifestFile = "manifest.json"
)

// Backup writes the database at pgURL and every blob to dir, which must not
// hold a backup yet.
func Backup(ctx context.Context, pgURL string, st *store.Store, blobs blob.Store, dir string) (Manifest, error) {
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
	m := Manifest{Taken: time.Now().UTC()}
	if out, err := exec.CommandContext(ctx, "pg_dump", "--format=custom", "--no-owner", "--file", filepath.Join(dir, dumpFile), pgURL).CombinedOutput(); err != nil {
		return m, fmt.Errorf("pg_dump: %w: %s", err, strings.TrimSpace(string(out)))
	}
	keys, err := blobs.Keys(ctx)
	if err != nil {
		return m, err
	}
	for _, k := range keys {
		path := filepath.Join(dir, blobsDir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return m, err
		}
		if err := blobs.GetFile(ctx, k, path); err != nil {
			return m, err
		}
	}
	m.Blobs = len(keys)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	return m, os.WriteFile(filepath.Join(dir, manifestFile), append(b, '\n'), 0o600)
}

// Restore loads the backup in dir into the database at pgURL (its objects
// replaced: run it with core stopped) and the bucket.
func Restore(ctx context.Context, pgURL string, blobs blob.Store, dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return m, fmt.Errorf("%s holds no complete backup: %w", dir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", manifestFile, err)
	}
	if out, err := exec.CommandContext(ctx, "pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
		"--dbname", pgURL, filepath.Join(dir, dumpFile)).CombinedOutput(); err != nil {
		return m, fmt.Errorf("pg_restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	root := filepath.Join(dir, blobsDir)
	n := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
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
	return m, err
}
