package retention

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/core/internal/workdir"
	"github.com/ytcaption/ytcaption/internal/miniotest"
)

type fixture struct {
	db    sqldb.DB
	st    *store.Store
	blobs blob.Store
	user  store.User
}

// eachDriver runs test on both of core's deployments, in parallel subtests:
// PostgreSQL with an S3 bucket (a real MinIO), and the single box's SQLite
// with blobs in a directory. The sweeper's queries and its blob deletions
// run the way each deployment runs them.
func eachDriver(t *testing.T, test func(t *testing.T, f fixture)) {
	t.Parallel()
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		test(t, setup(t, open))
	})
}

func setup(t *testing.T, open storetest.Maker) fixture {
	t.Helper()
	env := open(t)
	f := fixture{db: env.DB, st: env.Store, user: env.User}
	if env.DB.Dialect() == sqldb.SQLite {
		d, err := blob.OpenDir(t.TempDir(), "")
		require.NoError(t, err)
		f.blobs = d
		return f
	}
	m := miniotest.Start(t)
	blobs, err := blob.New(context.Background(), blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey,
		Bucket: fmt.Sprintf("retention-%d", time.Now().UnixNano())})
	require.NoError(t, err)
	f.blobs = blobs
	return f
}

// count runs a one-number query.
func (f fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	n, err := sqldb.Scalar[int](f.db.QueryRow(context.Background(), q, args...))
	require.NoError(t, err, q)
	return n
}

// finished makes a succeeded job with audio key that finished at `at`, with
// one transcript segment, and stores the audio unless it is stored already.
func (f fixture) finished(t *testing.T, key string, at time.Time) string {
	t.Helper()
	ctx := context.Background()
	j, err := f.st.CreateJob(ctx, store.NewJob{UserID: f.user.ID, URL: "u", CanonicalURL: "http://x/" + key + at.String(), SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	_, err = f.db.Exec(ctx, `UPDATE jobs SET status = 'succeeded', finished_at = $2, audio_key = $3 WHERE id = $1`, j.ID, at, key)
	require.NoError(t, err)
	_, err = f.db.Exec(ctx, `INSERT INTO segments (job_id, epoch, seq, start_ms, end_ms, text) VALUES ($1, 0, 0, 0, 900, 'words')`, j.ID)
	require.NoError(t, err)
	f.put(t, key)
	return j.ID
}

func (f fixture) put(t *testing.T, key string) {
	t.Helper()
	if ok, _ := f.blobs.Exists(context.Background(), key); ok {
		return
	}
	require.NoError(t, f.blobs.Put(context.Background(), key, strings.NewReader("RIFF"), 4, "audio/wav"))
}

func (f fixture) stored(t *testing.T, key string) bool {
	t.Helper()
	ok, err := f.blobs.Exists(context.Background(), key)
	require.NoError(t, err)
	return ok
}

// TestSweepDeletesExpiredAudioAndNothingElse runs the sweeper with an
// injected clock: audio only old jobs use is deleted, their transcripts and
// records stay, and every other blob and row is untouched.
func TestSweepDeletesExpiredAudioAndNothingElse(t *testing.T) {
	eachDriver(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		old, recent := now.Add(-8*24*time.Hour), now.Add(-24*time.Hour)

		oldJob := f.finished(t, "audio/old.wav", old)
		f.finished(t, "audio/shared.wav", old)
		f.finished(t, "audio/shared.wav", recent) // a recent job needs the same audio
		f.finished(t, "audio/new.wav", recent)
		f.put(t, "uploads/not-ours") // no job refers to it: not the sweeper's
		running, err := f.st.CreateJob(ctx, store.NewJob{UserID: f.user.ID, URL: "u", CanonicalURL: "c", SourceKind: job.SourceHTTP})
		require.NoError(t, err)
		_, err = f.db.Exec(ctx, `UPDATE jobs SET status = 'ready', audio_key = 'audio/running.wav' WHERE id = $1`, running.ID)
		require.NoError(t, err)
		f.put(t, "audio/running.wav")
		var segments, jobs int
		require.NoError(t, f.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM segments), (SELECT count(*) FROM jobs)`).Scan(&segments, &jobs))

		s := New(slog.New(slog.DiscardHandler), Config{Now: func() time.Time { return now }, Batch: 1}, f.st, f.blobs, nil)
		w, err := s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, w.Audio)
		require.Equal(t, 1, w.Blobs)
		require.False(t, f.stored(t, "audio/old.wav"), "expired audio deleted")
		for _, k := range []string{"audio/shared.wav", "audio/new.wav", "audio/running.wav", "uploads/not-ours"} {
			require.True(t, f.stored(t, k), "%s kept", k)
		}
		var s2, j2 int
		require.NoError(t, f.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM segments), (SELECT count(*) FROM jobs)`).Scan(&s2, &j2))
		require.Equal(t, segments, s2, "transcripts kept")
		require.Equal(t, jobs, j2, "job records kept")
		got, err := f.st.GetJob(ctx, f.user.ID, oldJob)
		require.NoError(t, err)
		require.Empty(t, got.AudioKey)
		require.Equal(t, job.StatusSucceeded, got.Status)
		segs, err := f.st.Segments(ctx, oldJob, got.Epoch, -1)
		require.NoError(t, err)
		require.Len(t, segs, 1, "a job whose audio expired still has its transcript")
		require.Equal(t, 1, f.count(t, `SELECT count(*) FROM sweeps WHERE audio = 1 AND blobs = 1`), "the pass is recorded")

		// A week later the shared audio's last user has expired too.
		s.cfg.Now = func() time.Time { return now.Add(7 * 24 * time.Hour) }
		_, err = s.Sweep(ctx)
		require.NoError(t, err)
		require.False(t, f.stored(t, "audio/shared.wav"))
		require.True(t, f.stored(t, "audio/running.wav"), "a job still running keeps its audio")
	})
}

func TestSweepKeepsAudioStoredAgainAfterItWasQueued(t *testing.T) {
	eachDriver(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		now := time.Now()
		f.finished(t, "audio/again.wav", now.Add(-8*24*time.Hour))
		n, err := f.st.ExpireAudio(ctx, now.Add(-7*24*time.Hour), 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		time.Sleep(1100 * time.Millisecond)                                                                // object times have one-second resolution
		require.NoError(t, f.blobs.Put(ctx, "audio/again.wav", strings.NewReader("RIFF"), 4, "audio/wav")) // a new job fetched the same audio
		s := New(slog.New(slog.DiscardHandler), Config{}, f.st, f.blobs, nil)
		w, err := s.Sweep(ctx)
		require.NoError(t, err)
		require.Zero(t, w.Blobs)
		require.True(t, f.stored(t, "audio/again.wav"))
	})
}

func TestSweepExpiresTranscriptsAndJobsWhenAsked(t *testing.T) {
	eachDriver(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		now := time.Now()
		oldest := f.finished(t, "audio/a.wav", now.Add(-400*24*time.Hour))
		middle := f.finished(t, "audio/b.wav", now.Add(-40*24*time.Hour))
		s := New(slog.New(slog.DiscardHandler), Config{Transcripts: 30 * 24 * time.Hour, Jobs: 365 * 24 * time.Hour}, f.st, f.blobs, nil)
		w, err := s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, w.Jobs)
		_, err = f.st.GetJob(ctx, f.user.ID, oldest)
		require.ErrorIs(t, err, job.ErrNotFound, "the job record is gone")
		got, err := f.st.GetJob(ctx, f.user.ID, middle)
		require.NoError(t, err)
		require.True(t, got.TranscriptExpired)
		segs, err := f.st.Segments(ctx, middle, got.Epoch, -1)
		require.NoError(t, err)
		require.Empty(t, segs)
	})
}

// TestSweepRemovesADeadProcessesWorkDirectory: a directory no live process
// holds goes; a live one's stays however old, and so does what is not a
// process directory.
func TestSweepRemovesADeadProcessesWorkDirectory(t *testing.T) {
	eachDriver(t, func(t *testing.T, f fixture) {
		dir := t.TempDir()
		live, _, err := workdir.Claim(dir)
		require.NoError(t, err)
		defer live.Release()
		dead, other := filepath.Join(dir, workdir.Prefix+"1"), filepath.Join(dir, "uploads")
		for _, d := range []string{dead, other} {
			require.NoError(t, os.Mkdir(d, 0o700))
		}
		long := time.Now().Add(-48 * time.Hour)
		for _, d := range []string{live.Path, other} {
			require.NoError(t, os.Chtimes(d, long, long))
		}
		s := New(slog.New(slog.DiscardHandler), Config{TempDir: dir}, f.st, f.blobs, nil)
		_, err = s.Sweep(context.Background())
		require.NoError(t, err)
		require.NoDirExists(t, dead)
		require.DirExists(t, live.Path)
		require.DirExists(t, other)
	})
}

// TestDeletingAUserLeavesNoRowOrBlobOfTheirs: their jobs, segments, keys,
// idempotency keys and audio all go; another user's shared audio stays.
func TestDeletingAUserLeavesNoRowOrBlobOfTheirs(t *testing.T) {
	eachDriver(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		now := time.Now()
		_, err := f.st.CreateAPIKey(ctx, f.user.ID)
		require.NoError(t, err)
		_, err = f.st.CreateJob(ctx, store.NewJob{UserID: f.user.ID, URL: "u", CanonicalURL: "http://x/k", SourceKind: job.SourceHTTP,
			IdempotencyKey: "k1", Fingerprint: []byte{1}})
		require.NoError(t, err)
		f.finished(t, "audio/alice-only.wav", now)
		f.finished(t, "audio/shared.wav", now)
		bob, err := f.st.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		alice := f.user
		f.user = bob
		bobs := f.finished(t, "audio/shared.wav", now)

		n, err := f.st.DeleteUser(ctx, "test", "alice")
		require.NoError(t, err)
		require.Equal(t, 3, n)
		_, err = DeletePending(ctx, f.st, f.blobs, 10)
		require.NoError(t, err)
		require.False(t, f.stored(t, "audio/alice-only.wav"))
		require.True(t, f.stored(t, "audio/shared.wav"), "bob's job still needs it")
		for _, q := range []string{
			`SELECT count(*) FROM users WHERE id = $1`, `SELECT count(*) FROM jobs WHERE user_id = $1`,
			`SELECT count(*) FROM api_keys WHERE user_id = $1`, `SELECT count(*) FROM idempotency_keys WHERE user_id = $1`,
		} {
			require.Zero(t, f.count(t, q, alice.ID), q)
		}
		require.Zero(t, f.count(t, `SELECT count(*) FROM segments s LEFT JOIN jobs j ON j.id = s.job_id WHERE j.id IS NULL`), "orphaned segments")
		_, err = f.st.GetJob(ctx, bob.ID, bobs)
		require.NoError(t, err, "nothing of bob's went")
	})
}

// TestSweepDeletesNoBlobWhileABackupRuns: while a backup holds the store
// (on SQLite the hold is this process's, the only one that may open the
// database), expired audio is unlinked from its job but its blob stays
// queued; the first pass after the backup deletes it.
func TestSweepDeletesNoBlobWhileABackupRuns(t *testing.T) {
	eachDriver(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		now := time.Now()
		f.finished(t, "audio/old.wav", now.Add(-8*24*time.Hour))
		s := New(slog.New(slog.DiscardHandler), Config{}, f.st, f.blobs, nil)

		release, err := f.st.HoldForBackup(ctx)
		require.NoError(t, err)
		w, err := s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, w.Audio, "the job lets go of its audio")
		require.Zero(t, w.Blobs)
		require.True(t, f.stored(t, "audio/old.wav"), "a blob the backup may be copying stays")
		release()

		w, err = s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, w.Blobs)
		require.False(t, f.stored(t, "audio/old.wav"))
	})
}
