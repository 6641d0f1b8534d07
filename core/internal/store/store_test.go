package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

const lease = time.Minute

// storeMaker makes a migrated store with a user "alice".
type storeMaker func(t *testing.T) (*store.Store, store.User)

// forEachDriver runs a test on both drivers — the conformance suite: every
// store rule must hold on PostgreSQL and on SQLite alike.
func forEachDriver(t *testing.T, test func(t *testing.T, newStore storeMaker)) {
	t.Helper()
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		test(t, func(t *testing.T) (*store.Store, store.User) {
			t.Helper()
			e := open(t)
			return e.Store, e.User
		})
	})
}

func create(t *testing.T, s *store.Store, u store.User) job.Job {
	t.Helper()
	j, err := s.CreateJob(context.Background(), store.NewJob{
		UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP,
	})
	require.NoError(t, err)
	return j
}

// toReady takes a job through the download stage.
func toReady(t *testing.T, s *store.Store, u store.User) job.Job {
	t.Helper()
	return toReadyWith(t, s, u, 7100*time.Millisecond)
}

// toReadyWith takes a job with audio of duration d through the download stage.
func toReadyWith(t *testing.T, s *store.Store, u store.User, d time.Duration) job.Job {
	t.Helper()
	ctx := context.Background()
	j := create(t, s, u)
	c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, j.ID, c.ID)
	require.NoError(t, s.MarkReady(ctx, c.ID, c.Epoch, store.Media{Title: "a", Duration: d, AudioKey: "audio/" + c.ID + ".wav"}))
	return c
}

func toTranscribing(t *testing.T, s *store.Store, u store.User) job.Job {
	t.Helper()
	toReady(t, s, u)
	c, ok, err := s.ClaimReady(context.Background(), "node-1", sphinx, lease, 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, job.StatusTranscribing, c.Status)
	return c
}

func seg(seq int) job.Segment {
	return job.Segment{Seq: seq, StartMS: int64(seq) * 1000, EndMS: int64(seq)*1000 + 900, Text: "word",
		Words: []job.Word{{StartMS: int64(seq) * 1000, EndMS: int64(seq)*1000 + 900, Text: "word", Probability: 0.9}}}
}

func TestMigrateAppliesOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	errs := make([]error, 4)
	for i := range counts {
		wg.Go(func() { counts[i], errs[i] = migrations.Migrate(context.Background(), sqldb.FromPool(pool)) })
	}
	wg.Wait()
	total := 0
	for i := range counts {
		require.NoError(t, errs[i])
		total += counts[i]
	}
	all, err := migrations.Migrate(context.Background(), sqldb.FromPool(pgtest.Pool(t))) // on a fresh database: every migration
	require.NoError(t, err)
	require.Equal(t, all, total, "each migration applied exactly once")
	n, err := migrations.Migrate(context.Background(), sqldb.FromPool(pool))
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestAPIKeys(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		key, err := s.CreateAPIKey(ctx, u.ID)
		require.NoError(t, err)
		require.Regexp(t, `^ytc_[0-9A-Za-z]{32}$`, key)
		got, err := s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, u.ID, got.ID)
		require.Equal(t, store.RoleUser, got.Role)

		_, err = s.Authenticate(ctx, key+"x")
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err))

		require.NoError(t, s.AddAPIKey(ctx, u.ID, "dev-key-0123456789"))
		require.NoError(t, s.AddAPIKey(ctx, u.ID, "dev-key-0123456789"), "idempotent")
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(s.AddAPIKey(ctx, u.ID, "short")))
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		require.Equal(t, job.CodeConflict, job.CodeOf(s.AddAPIKey(ctx, bob.ID, "dev-key-0123456789")), "a key cannot change hands")
	})
}

func TestKeysAreStoredHashed(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	_, err := migrations.Migrate(ctx, sqldb.FromPool(pool))
	require.NoError(t, err)
	s := store.New(sqldb.FromPool(pool))
	u, err := s.EnsureUser(ctx, "alice", store.RoleUser)
	require.NoError(t, err)
	key, err := s.CreateAPIKey(ctx, u.ID)
	require.NoError(t, err)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE encode(hash, 'escape') LIKE '%' || $1 || '%' OR prefix = $1`, key).Scan(&n))
	require.Zero(t, n, "the plaintext key must not be stored")
	_, err = pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now()`)
	require.NoError(t, err)
	_, err = s.Authenticate(ctx, key)
	require.Equal(t, job.CodeUnauthorized, job.CodeOf(err), "revoked")
}

func TestGetAndListAreScopedToTheUser(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, alice := newStore(t)
		ctx := context.Background()
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		var ids []string
		for range 5 {
			ids = append(ids, create(t, s, alice).ID)
		}
		bobs := create(t, s, bob)

		_, err = s.GetJob(ctx, alice.ID, bobs.ID)
		require.ErrorIs(t, err, job.ErrNotFound)
		_, err = s.GetJob(ctx, alice.ID, "not-a-uuid")
		require.ErrorIs(t, err, job.ErrNotFound)
		got, err := s.GetJob(ctx, "", bobs.ID)
		require.NoError(t, err, "internal callers see every job")
		require.Equal(t, bob.ID, got.UserID)

		var seen []string
		cur := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5)
			jobs, next, err := s.ListJobs(ctx, alice.ID, 2, cur)
			require.NoError(t, err)
			for _, j := range jobs {
				seen = append(seen, j.ID)
			}
			if next == "" {
				break
			}
			cur = next
		}
		want := make([]string, len(ids))
		for i, id := range ids {
			want[len(ids)-1-i] = id // newest first
		}
		require.Equal(t, want, seen)
		_, _, err = s.ListJobs(ctx, alice.ID, 2, "garbage")
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
	})
}

func TestHappyPathThroughEveryStage(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := toTranscribing(t, s, u)
		require.Equal(t, int64(2), j.Epoch, "each claim bumps the epoch")
		require.Equal(t, 1, j.Attempt, "attempts count per stage")

		l, err := s.ExtendLease(ctx, j.ID, j.Epoch, lease, 0.25)
		require.NoError(t, err)
		require.False(t, l.Cancel)
		require.WithinDuration(t, time.Now().Add(lease), l.ExpiresAt, 5*time.Second)

		for i := range 3 {
			cancel, err := s.PutSegments(ctx, j.ID, j.Epoch, []job.Segment{seg(i)}, float64(i+1)/3)
			require.NoError(t, err)
			require.False(t, cancel)
		}
		// A retried push replaces, never duplicates.
		_, err = s.PutSegments(ctx, j.ID, j.Epoch, []job.Segment{seg(1)}, -1)
		require.NoError(t, err)

		_, err = s.Complete(ctx, j.ID, j.Epoch, "en", 4)
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "a missing segment blocks completion")
		done, err := s.Complete(ctx, j.ID, j.Epoch, "en", 3)
		require.NoError(t, err)
		require.True(t, done)
		done, err = s.Complete(ctx, j.ID, j.Epoch, "en", 3)
		require.NoError(t, err, "completing twice is harmless")
		require.False(t, done, "but only the first call finished the job")

		got, err := s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusSucceeded, got.Status)
		require.Equal(t, 1.0, got.Progress)
		require.Equal(t, "en", got.DetectedLanguage)
		require.Equal(t, 7100*time.Millisecond, got.MediaDuration)
		require.False(t, got.FinishedAt.IsZero())
		segs, err := s.Segments(ctx, j.ID, j.Epoch, -1)
		require.NoError(t, err)
		require.Len(t, segs, 3)
		require.Equal(t, seg(2), segs[2])
		later, err := s.Segments(ctx, j.ID, j.Epoch, 1)
		require.NoError(t, err)
		require.Len(t, later, 1)
	})
}

func TestIllegalTransitionsAreRefused(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		q := create(t, s, u)
		require.ErrorIs(t, s.MarkReady(ctx, q.ID, q.Epoch, store.Media{}), job.ErrLeaseLost, "queued is not downloading")
		_, err := s.CancelJob(ctx, u.ID, q.ID)
		require.NoError(t, err)
		r := toReady(t, s, u)
		_, err = s.Complete(ctx, r.ID, r.Epoch, "", 0)
		require.ErrorIs(t, err, job.ErrLeaseLost, "ready is not transcribing")
		_, err = s.ExtendLease(ctx, r.ID, r.Epoch, lease, -1)
		require.ErrorIs(t, err, job.ErrLeaseLost, "nobody holds a ready job")
		_, err = s.PutSegments(ctx, r.ID, r.Epoch, []job.Segment{seg(0)}, -1)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		_, err = s.Fail(ctx, r.ID, r.Epoch, job.Errorf(job.CodeEngineFailed, "x"))
		require.ErrorIs(t, err, job.ErrLeaseLost)
	})
}

func TestStaleEpochIsFencedOff(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		old := toTranscribing(t, s, u)
		// The holder dies: a short lease expires and the rescuer hands the job back.
		_, err := s.ExtendLease(ctx, old.ID, old.Epoch, time.Millisecond, -1)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			ids, err := s.RescueExpired(ctx, 10)
			require.NoError(t, err)
			return len(ids) == 1 && ids[0] == old.ID
		}, 10*time.Second, 10*time.Millisecond)
		got, err := s.GetJob(ctx, "", old.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusReady, got.Status)

		// The backoff keeps it from being reclaimed at once; skip it for the test.
		forceRunnable(t, s, old.ID)
		cur, ok, err := s.ClaimReady(ctx, "node-2", whispercpp, lease, 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, old.Epoch+1, cur.Epoch)
		require.Equal(t, 2, cur.Attempt)

		_, err = s.ExtendLease(ctx, old.ID, old.Epoch, lease, -1)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		_, err = s.PutSegments(ctx, old.ID, old.Epoch, []job.Segment{seg(0)}, -1)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		_, err = s.Complete(ctx, old.ID, old.Epoch, "", 0)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		_, err = s.Fail(ctx, old.ID, old.Epoch, job.Errorf(job.CodeEngineFailed, "late"))
		require.ErrorIs(t, err, job.ErrLeaseLost)

		_, err = s.PutSegments(ctx, cur.ID, cur.Epoch, []job.Segment{seg(0)}, -1)
		require.NoError(t, err)
		_, err = s.Complete(ctx, cur.ID, cur.Epoch, "en", 1)
		require.NoError(t, err)

		attempts, err := s.Attempts(ctx, old.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 1)
		require.Equal(t, job.CodeLeaseLost, attempts[0].ErrorCode)
		require.Equal(t, "transcribe", attempts[0].Stage)
		require.Equal(t, "node-1", attempts[0].Owner)
	})
}

// forceRunnable clears a job's backoff so a test need not wait it out.
func forceRunnable(t *testing.T, s *store.Store, id string) {
	t.Helper()
	require.NoError(t, store.ForceRunnable(context.Background(), s, id))
}

func TestFailRetriesThenGivesUp(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := create(t, s, u)
		retryable := &job.Error{Code: job.CodeDownloadFailed, Message: "connection reset", Retryable: true}
		for attempt := 1; attempt <= 3; attempt++ {
			c, ok, err := s.ClaimQueued(ctx, "core-1", lease)
			require.NoError(t, err)
			require.True(t, ok, "attempt %d", attempt)
			require.Equal(t, attempt, c.Attempt)
			st, err := s.Fail(ctx, c.ID, c.Epoch, retryable)
			require.NoError(t, err)
			if attempt < 3 {
				require.Equal(t, job.StatusQueued, st)
				_, ok, err := s.ClaimQueued(ctx, "core-1", lease)
				require.NoError(t, err)
				require.False(t, ok, "backoff: not claimable at once")
				forceRunnable(t, s, j.ID)
			} else {
				require.Equal(t, job.StatusFailed, st)
			}
		}
		got, err := s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusFailed, got.Status)
		require.Equal(t, job.CodeAttemptsExceeded, got.ErrorCode)
		require.Contains(t, got.ErrorMessage, "connection reset")
		attempts, err := s.Attempts(ctx, j.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 3)
	})
}

func TestPermanentFailureFailsAtOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		create(t, s, u)
		c, _, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		st, err := s.Fail(ctx, c.ID, c.Epoch, job.Errorf(job.CodeNotMedia, "no audio stream"))
		require.NoError(t, err)
		require.Equal(t, job.StatusFailed, st)
		got, err := s.GetJob(ctx, u.ID, c.ID)
		require.NoError(t, err)
		require.Equal(t, job.CodeNotMedia, got.ErrorCode)
		require.Equal(t, "no audio stream", got.ErrorMessage)
	})
}

func TestCancelInEveryState(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()

		q := create(t, s, u)
		got, err := s.CancelJob(ctx, u.ID, q.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusCancelled, got.Status)
		require.False(t, got.CancelRequested, "nobody holds a queued job")

		// Held job: the holder learns of the cancel from its next lease call and may
		// still store the segments it has; completion is refused.
		tr := toTranscribing(t, s, u)
		got, err = s.CancelJob(ctx, u.ID, tr.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusCancelled, got.Status)
		require.True(t, got.CancelRequested)
		l, err := s.ExtendLease(ctx, tr.ID, tr.Epoch, lease, -1)
		require.NoError(t, err)
		require.True(t, l.Cancel)
		cancel, err := s.PutSegments(ctx, tr.ID, tr.Epoch, []job.Segment{seg(0)}, 0.5)
		require.NoError(t, err)
		require.True(t, cancel)
		_, err = s.Complete(ctx, tr.ID, tr.Epoch, "en", 1)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		st, err := s.Fail(ctx, tr.ID, tr.Epoch, job.Errorf(job.CodeEngineFailed, "killed"))
		require.NoError(t, err)
		require.Equal(t, job.StatusCancelled, st)
		segs, err := s.Segments(ctx, tr.ID, tr.Epoch, -1)
		require.NoError(t, err)
		require.Len(t, segs, 1, "a cancelled job keeps its segments")

		// Terminal: unchanged.
		again, err := s.CancelJob(ctx, u.ID, tr.ID)
		require.NoError(t, err)
		require.Equal(t, got.FinishedAt, again.FinishedAt)

		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		_, err = s.CancelJob(ctx, bob.ID, create(t, s, u).ID)
		require.ErrorIs(t, err, job.ErrNotFound)
	})
}

// readyJob creates n and takes it through the download stage.
func readyJob(t *testing.T, s *store.Store, n store.NewJob) job.Job {
	t.Helper()
	ctx := context.Background()
	j, err := s.CreateJob(ctx, n)
	require.NoError(t, err)
	c, _, err := s.ClaimQueued(ctx, "core", lease)
	require.NoError(t, err)
	require.Equal(t, j.ID, c.ID)
	require.NoError(t, s.MarkReady(ctx, c.ID, c.Epoch, store.Media{AudioKey: "k"}))
	return j
}

// What the gpu-node's adapters advertise (gpu-node/internal/engine): the
// store knows no engine, it routes by these.
var (
	sphinx     = []engines.Caps{{Name: "sphinx", Models: []string{"en-us"}, Languages: []string{"en"}}}
	whispercpp = []engines.Caps{{Name: "whispercpp", Models: []string{"base.en", "large-v3"}, Translate: true, Prompt: true}}
	openai     = []engines.Caps{{Name: "openai", Models: []string{"whisper-1"}, Translate: true, Prompt: true}}
)

func TestClaimReadyMatchesEngines(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := readyJob(t, s, store.NewJob{UserID: u.ID, URL: "u", CanonicalURL: "u", SourceKind: job.SourceHTTP, Engine: "openai"})
		_, ok, err := s.ClaimReady(ctx, "node", sphinx, lease, 0)
		require.NoError(t, err)
		require.False(t, ok, "a sphinx node must not take an openai job")
		_, ok, err = s.ClaimReady(ctx, "node", nil, lease, 0)
		require.NoError(t, err)
		require.False(t, ok, "a node that advertises nothing gets nothing")
		got, ok, err := s.ClaimReady(ctx, "node", slices.Concat(sphinx, openai), lease, 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, j.ID, got.ID)
	})
}

// TestClaimReadyMatchesWhatTheEnginesCanDo: a job goes only to a node one
// of whose engines, as the node advertised it, serves everything it asks: a
// translation, a prompt, its language, its model.
func TestClaimReadyMatchesWhatTheEnginesCanDo(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		for i, n := range []store.NewJob{
			{Language: "de", Task: "translate"},
			{Language: "de"},
			{Language: "en", Prompt: "Elinor, Marianne"},
			{Language: "en", Model: "large-v3"},
		} {
			n.UserID, n.URL, n.CanonicalURL, n.SourceKind = u.ID, "u", fmt.Sprintf("u%d", i), job.SourceHTTP
			readyJob(t, s, n)
		}
		_, ok, err := s.ClaimReady(ctx, "node", sphinx, lease, 0)
		require.NoError(t, err)
		require.False(t, ok, "pocketsphinx neither translates, knows German, reads a prompt nor has large-v3")
		// The same engine name with other capabilities: the advertisement
		// decides, not the name.
		_, ok, err = s.ClaimReady(ctx, "node", []engines.Caps{{Name: "whispercpp", Languages: []string{"en"}}}, lease, 0)
		require.NoError(t, err)
		require.False(t, ok, "a whispercpp node that says it knows English only, without a prompt or models")
		// The store has no engine table: an engine name it never heard of
		// serves what its node says it can.
		got, ok, err := s.ClaimReady(ctx, "node", []engines.Caps{{Name: "my-own", Languages: []string{"de"}, Translate: true}}, lease, 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "translate", got.Task)
		for _, want := range []string{"de", "en", "en"} {
			got, ok, err := s.ClaimReady(ctx, "node", whispercpp, lease, 0)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, want, got.Language)
		}
	})
}

// TestExpiredLeaseRefusesLateWritesBeforeRescue: a holder silent for a whole
// lease (SIGSTOPped, partitioned) may not write, even while no rescuer has
// requeued the job yet.
func TestExpiredLeaseRefusesLateWritesBeforeRescue(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		create(t, s, u)
		c, _, err := s.ClaimQueued(ctx, "core", lease)
		require.NoError(t, err)
		require.NoError(t, s.MarkReady(ctx, c.ID, c.Epoch, store.Media{AudioKey: "k"}))
		j, ok, err := s.ClaimReady(ctx, "node", whispercpp, 50*time.Millisecond, 0)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = s.PutSegments(ctx, j.ID, j.Epoch, []job.Segment{{Seq: 0, EndMS: 1000, Text: "in time"}}, -1)
		require.NoError(t, err, "a write within the lease is taken")
		time.Sleep(100 * time.Millisecond)

		_, err = s.ExtendLease(ctx, j.ID, j.Epoch, lease, -1)
		require.ErrorIs(t, err, job.ErrLeaseLost, "a late heartbeat does not revive the lease")
		_, err = s.PutSegments(ctx, j.ID, j.Epoch, []job.Segment{{Seq: 1, StartMS: 1000, EndMS: 2000, Text: "too late"}}, -1)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		_, err = s.Complete(ctx, j.ID, j.Epoch, "en", 1)
		require.ErrorIs(t, err, job.ErrLeaseLost)
		got, err := s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusTranscribing, got.Status, "no rescue ran: only the expiry refused the writes")
	})
}

// TestPrefetchClaimLeavesFreshJobsToIdleNodes: a busy node asking ahead
// gets only a job no idle node took within the grace period.
func TestPrefetchClaimLeavesFreshJobsToIdleNodes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := create(t, s, u)
		c, _, err := s.ClaimQueued(ctx, "core", lease)
		require.NoError(t, err)
		require.NoError(t, s.MarkReady(ctx, c.ID, c.Epoch, store.Media{AudioKey: "k"}))
		_, ok, err := s.ClaimReady(ctx, "busy-node", whispercpp, lease, time.Hour)
		require.NoError(t, err)
		require.False(t, ok, "the job is fresh: an idle node should take it")
		time.Sleep(60 * time.Millisecond)
		got, ok, err := s.ClaimReady(ctx, "busy-node", whispercpp, lease, 50*time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok, "no idle node took it within the grace period")
		require.Equal(t, j.ID, got.ID)
	})
}

func TestConcurrentClaimsTakeEachJobOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		const jobs, claimers = 40, 8
		for range jobs {
			create(t, s, u)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range claimers {
			wg.Go(func() {
				for {
					j, ok, err := s.ClaimQueued(context.Background(), "core", lease)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					mu.Lock()
					seen[j.ID]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, seen, jobs)
		for id, n := range seen {
			require.Equal(t, 1, n, id)
		}
	})
}

func TestRescueFailsWhenAttemptsAreUsedUp(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "u", CanonicalURL: "u", SourceKind: job.SourceHTTP, MaxAttempts: 1})
		require.NoError(t, err)
		_, ok, err := s.ClaimQueued(ctx, "core-1", time.Millisecond)
		require.NoError(t, err)
		require.True(t, ok)
		require.Eventually(t, func() bool {
			ids, err := s.RescueExpired(ctx, 10)
			require.NoError(t, err)
			return len(ids) == 1
		}, 10*time.Second, 10*time.Millisecond)
		got, err := s.GetJob(ctx, u.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusFailed, got.Status)
		require.Equal(t, job.CodeAttemptsExceeded, got.ErrorCode)
		require.True(t, errors.Is(&job.Error{Code: got.ErrorCode, Message: "x"}, &job.Error{Code: job.CodeAttemptsExceeded}))
	})
}

func TestReleaseRequeuesAtOnceWithoutCountingTheAttempt(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		j := toTranscribing(t, s, u)
		st, err := s.Release(ctx, j.ID, j.Epoch, 0)
		require.NoError(t, err)
		require.Equal(t, job.StatusReady, st)
		again, ok, err := s.ClaimReady(ctx, "node-2", whispercpp, lease, 0)
		require.NoError(t, err)
		require.True(t, ok, "no backoff after a release")
		require.Equal(t, j.ID, again.ID)
		require.Equal(t, 1, again.Attempt, "the released attempt did not count")
		require.Equal(t, j.Epoch+1, again.Epoch)
		_, err = s.Release(ctx, j.ID, j.Epoch, 0)
		require.ErrorIs(t, err, job.ErrLeaseLost, "the old epoch cannot release the new holder's lease")
		attempts, err := s.Attempts(ctx, j.ID)
		require.NoError(t, err)
		require.Empty(t, attempts, "a release is not a failure")

		create(t, s, u)
		d, _, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		st, err = s.Release(ctx, d.ID, d.Epoch, 0)
		require.NoError(t, err)
		require.Equal(t, job.StatusQueued, st, "a download starts over from queued")
		d2, ok, err := s.ClaimQueued(ctx, "core-2", lease)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, d.ID, d2.ID, "claimable at once")
		require.Equal(t, 1, d2.Attempt)
		_, err = s.CancelJob(ctx, u.ID, d2.ID)
		require.NoError(t, err)

		c := toTranscribing(t, s, u)
		_, err = s.CancelJob(ctx, u.ID, c.ID)
		require.NoError(t, err)
		st, err = s.Release(ctx, c.ID, c.Epoch, 0)
		require.NoError(t, err)
		require.Equal(t, job.StatusCancelled, st)

		// Released for later (a breaker is open): not claimable until then, and
		// still no attempt counted.
		create(t, s, u)
		l, _, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		_, err = s.Release(ctx, l.ID, l.Epoch, time.Hour)
		require.NoError(t, err)
		_, ok, err = s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		require.False(t, ok, "deferred")
		got, err := s.GetJob(ctx, "", l.ID)
		require.NoError(t, err)
		require.Zero(t, got.Attempt)
	})
}
