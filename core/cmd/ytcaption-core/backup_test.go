package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestSingleBoxBackupAndRestoreThroughTheCommand: `backup --data-dir` backs
// up a box that holds its database (running) and one that does not
// (stopped), and `restore --data-dir` makes a new data directory whose job
// and audio are the box's.
func TestSingleBoxBackupAndRestoreThroughTheCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cmd := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, func(string) string { return "" }, &out, &errOut)
		return out.String(), err
	}
	data, out := t.TempDir(), filepath.Join(t.TempDir(), "backup")

	// The box: its database open, a job and its audio.
	db, err := sqldb.OpenSQLite(filepath.Join(data, core.DatabaseFile))
	require.NoError(t, err)
	_, err = migrations.Migrate(ctx, db)
	require.NoError(t, err)
	st := store.New(db)
	u, err := st.EnsureUser(ctx, "alice", store.RoleUser)
	require.NoError(t, err)
	j, err := st.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://x/a.ogg", CanonicalURL: "http://x/a.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	blobs, err := blob.OpenDir(filepath.Join(data, core.BlobDir), "")
	require.NoError(t, err)
	require.NoError(t, blobs.Put(ctx, "audio/aa/a.wav", strings.NewReader("RIFF"), 4, "audio/wav"))

	running := filepath.Join(t.TempDir(), "running")
	stdout, err := cmd("backup", "--data-dir", data, "--out", running)
	require.NoError(t, err, "the running box is backed up beside it")
	require.Equal(t, "backed up the single box's database and 1 blobs to "+running+" (the box was running)\n", stdout)
	_, err = st.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://x/b.ogg", CanonicalURL: "http://x/b.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err, "the box writes on after the backup")
	db.Close()

	stdout, err = cmd("backup", "--data-dir", data, "--out", out)
	require.NoError(t, err)
	require.Equal(t, "backed up the single box's database and 1 blobs to "+out+" (the box was stopped)\n", stdout)
	_, err = cmd("backup", "--data-dir", data, "--out", out)
	require.ErrorContains(t, err, "holds a backup already")

	_, err = cmd("restore", "--data-dir", data, "--from", out)
	require.ErrorContains(t, err, "move the old one aside")
	restored := t.TempDir()
	stdout, err = cmd("restore", "--data-dir", restored, "--from", out)
	require.NoError(t, err)
	require.Contains(t, stdout, "into "+restored+": the database and 1 blobs")

	rdb, err := sqldb.OpenSQLite(filepath.Join(restored, core.DatabaseFile))
	require.NoError(t, err)
	defer rdb.Close()
	got, err := store.New(rdb).GetJob(ctx, u.ID, j.ID)
	require.NoError(t, err)
	require.Equal(t, j.URL, got.URL)
	all, _, err := store.New(rdb).ListJobs(ctx, u.ID, 10, "")
	require.NoError(t, err)
	require.Len(t, all, 2, "the stopped box's backup has the job created after the running one's")
	early := t.TempDir()
	_, err = cmd("restore", "--data-dir", early, "--from", running)
	require.NoError(t, err)
	edb, err := sqldb.OpenSQLite(filepath.Join(early, core.DatabaseFile))
	require.NoError(t, err)
	defer edb.Close()
	all, _, err = store.New(edb).ListJobs(ctx, u.ID, 10, "")
	require.NoError(t, err)
	require.Len(t, all, 1, "the running box's backup is the snapshot of its moment")
	rblobs, err := blob.OpenDir(filepath.Join(restored, core.BlobDir), "")
	require.NoError(t, err)
	ok, err := rblobs.Exists(ctx, "audio/aa/a.wav")
	require.NoError(t, err)
	require.True(t, ok)

	_, err = cmd("backup", "--data-dir", t.TempDir(), "--out", filepath.Join(t.TempDir(), "b"))
	require.ErrorContains(t, err, "holds no single-box database", "an empty directory is not a box to back up")
}
