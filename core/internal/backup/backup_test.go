package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/backup"
	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

// state is what a round trip must keep: a user's finished job, its
// transcript and its audio.
type state struct {
	userID, jobID, audioKey string
	audio                   string
}

func migrated(t *testing.T, db sqldb.DB) *store.Store {
	t.Helper()
	_, err := migrations.Migrate(context.Background(), db)
	require.NoError(t, err)
	return store.New(db)
}

// populate makes alice's succeeded job with one segment and its audio blob.
func populate(t *testing.T, db sqldb.DB, blobs blob.Store) state {
	t.Helper()
	ctx := context.Background()
	st := migrated(t, db)
	u, err := st.EnsureUser(ctx, "alice", store.RoleUser)
	require.NoError(t, err)
	j, err := st.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://x/a.ogg", CanonicalURL: "http://x/a.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	s := state{userID: u.ID, jobID: j.ID, audioKey: "audio/ab/abc.wav", audio: "RIFF and some samples"}
	_, err = db.Exec(ctx, `UPDATE jobs SET status = 'succeeded', finished_at = now(), audio_key = $2, media_title = 'A talk' WHERE id = $1`, j.ID, s.audioKey)
	require.NoError(t, err)
	_, err = db.Exec(ctx, `INSERT INTO segments (job_id, epoch, seq, start_ms, end_ms, text) VALUES ($1, 0, 0, 0, 900, 'hello backup')`, j.ID)
	require.NoError(t, err)
	require.NoError(t, blobs.Put(ctx, s.audioKey, strings.NewReader(s.audio), int64(len(s.audio)), "audio/wav"))
	return s
}

// check requires the restored database and blobs to hold s.
func check(t *testing.T, db sqldb.DB, blobs blob.Store, s state) {
	t.Helper()
	ctx := context.Background()
	n, err := migrations.Migrate(ctx, db)
	require.NoError(t, err)
	require.Zero(t, n, "the restored schema is current")
	st := store.New(db)
	j, err := st.GetJob(ctx, s.userID, s.jobID)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, j.Status)
	require.Equal(t, "A talk", j.MediaTitle)
	require.Equal(t, s.audioKey, j.AudioKey)
	segs, err := st.Segments(ctx, s.jobID, j.Epoch, -1)
	require.NoError(t, err)
	require.Len(t, segs, 1)
	require.Equal(t, "hello backup", segs[0].Text)
	got := filepath.Join(t.TempDir(), "audio")
	require.NoError(t, blobs.GetFile(ctx, s.audioKey, got))
	b, err := os.ReadFile(got)
	require.NoError(t, err)
	require.Equal(t, s.audio, string(b))
}

func openSQLite(t *testing.T, path string) sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenSQLite(path)
	require.NoError(t, err)
	return db
}

func openDir(t *testing.T, root string) *blob.Dir {
	t.Helper()
	d, err := blob.OpenDir(root, "")
	require.NoError(t, err)
	return d
}

// TestSingleBoxRoundTrip: a single box's SQLite database and blob directory
// are backed up (VACUUM INTO and the blobs) and restored into a new data
// directory, where the job, its transcript and its audio are whole. A
// restore never overwrites a database, and a backup never a backup.
func TestSingleBoxRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "backup")
	db := openSQLite(t, filepath.Join(data, "ytcaption.db"))
	blobs := openDir(t, filepath.Join(data, "blobs"))
	s := populate(t, db, blobs)

	m, err := backup.BackupSQLite(ctx, db, "", blobs, out)
	require.NoError(t, err)
	require.Equal(t, 1, m.Blobs)
	require.Equal(t, sqldb.SQLite, m.Database)
	_, err = backup.BackupSQLite(ctx, db, "", blobs, out)
	require.ErrorContains(t, err, "holds a backup already")
	// Written after the backup: not in it.
	_, err = db.Exec(ctx, `UPDATE jobs SET media_title = 'changed later' WHERE id = $1`, s.jobID)
	require.NoError(t, err)
	db.Close()

	restored := t.TempDir()
	rblobs := openDir(t, filepath.Join(restored, "blobs"))
	m2, err := backup.RestoreSQLite(ctx, filepath.Join(restored, "ytcaption.db"), rblobs, out)
	require.NoError(t, err)
	require.Equal(t, m.Taken, m2.Taken)
	_, err = backup.RestoreSQLite(ctx, filepath.Join(restored, "ytcaption.db"), rblobs, out)
	require.ErrorContains(t, err, "move the old one aside")
	_, err = backup.RestoreSQLite(ctx, filepath.Join(data, "ytcaption.db"), rblobs, out)
	require.ErrorContains(t, err, "exists", "the original is never overwritten either")

	rdb := openSQLite(t, filepath.Join(restored, "ytcaption.db"))
	defer rdb.Close()
	check(t, rdb, rblobs, s)
	left, err := filepath.Glob(filepath.Join(restored, "*.restoring"))
	require.NoError(t, err)
	require.Empty(t, left)
}

// TestSingleBoxBackupRefusesAnotherDialect: a backup is restored only into
// the kind of database it came from, with a message naming the right one.
func TestSingleBoxBackupRefusesAnotherDialect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "backup")
	db := openSQLite(t, filepath.Join(data, "ytcaption.db"))
	defer db.Close()
	blobs := openDir(t, filepath.Join(data, "blobs"))
	populate(t, db, blobs)
	_, err := backup.BackupSQLite(ctx, db, "", blobs, out)
	require.NoError(t, err)
	_, err = backup.Restore(ctx, "postgres://127.0.0.1:1/none", blobs, out)
	require.ErrorContains(t, err, "single-box (SQLite) backup")
	require.ErrorContains(t, err, "--data-dir")

	// A PostgreSQL backup's manifest (an old one has no database field).
	pgOut := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(pgOut, "manifest.json"), []byte(`{"taken":"2026-01-01T00:00:00Z","blobs":0}`), 0o600))
	_, err = backup.RestoreSQLite(ctx, filepath.Join(t.TempDir(), "ytcaption.db"), blobs, pgOut)
	require.ErrorContains(t, err, "PostgreSQL backup")
}

// TestPostgresRoundTrip: pg_dump and pg_restore carry the same state into
// a fresh database.
func TestPostgresRoundTrip(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srcURL, dstURL := pgtest.URL(t), pgtest.URL(t)
	pool, err := pgxpool.New(ctx, srcURL)
	require.NoError(t, err)
	defer pool.Close()
	db := sqldb.FromPool(pool)
	blobs := openDir(t, t.TempDir())
	s := populate(t, db, blobs)
	out := filepath.Join(t.TempDir(), "backup")
	m, err := backup.Backup(ctx, srcURL, store.New(db), blobs, out)
	require.NoError(t, err)
	require.Equal(t, sqldb.Postgres, m.Database)
	_, err = backup.RestoreSQLite(ctx, filepath.Join(t.TempDir(), "ytcaption.db"), blobs, out)
	require.ErrorContains(t, err, "PostgreSQL backup")

	rblobs := openDir(t, t.TempDir())
	_, err = backup.Restore(ctx, dstURL, rblobs, out)
	require.NoError(t, err)
	dst, err := pgxpool.New(ctx, dstURL)
	require.NoError(t, err)
	defer dst.Close()
	check(t, sqldb.FromPool(dst), rblobs, s)
}
