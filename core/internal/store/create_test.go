package store_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestOneStatementCreatesOnlyWhatNeedsNoDecision: a user without a quota
// gets a job from the single statement, on PostgreSQL with a new key too;
// a key seen before, or a user with a quota, gets nothing from it — the
// creating transaction must replay, refuse or count — and whatever the
// statement declined, CreateJobOnce still gets right.
func TestOneStatementCreatesOnlyWhatNeedsNoDecision(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		plain := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP}
		pg := s.Dialect() == sqldb.Postgres
		ok, err := s.CreateFast(ctx, plain)
		require.NoError(t, err)
		require.True(t, ok, "a user without a quota: one statement")

		ok, err = s.CreateFast(ctx, keyed(u, "k1", "fp"))
		require.NoError(t, err)
		require.Equal(t, pg, ok, "a new key: one statement on PostgreSQL")
		if !ok {
			_, _, err = s.CreateJobOnce(ctx, keyed(u, "k1", "fp"))
			require.NoError(t, err)
		} else {
			ok, err = s.CreateFast(ctx, keyed(u, "k1", "fp"))
			require.NoError(t, err)
			require.False(t, ok, "a key seen before is the transaction's to replay")
			again, replayed, err := s.CreateJobOnce(ctx, keyed(u, "k1", "fp"))
			require.NoError(t, err)
			require.True(t, replayed)
			jobs, _, err := s.ListJobs(ctx, u.ID, 10, "")
			require.NoError(t, err)
			require.Len(t, jobs, 2, "the replays created nothing")
			require.Contains(t, []string{jobs[0].ID, jobs[1].ID}, again.ID)
			_, _, err = s.CreateJobOnce(ctx, keyed(u, "k1", "other"))
			require.Equal(t, job.CodeIdempotencyKey, job.CodeOf(err))
		}

		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "three", MaxConcurrent: 3}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "three"))
		ok, err = s.CreateFast(ctx, plain)
		require.NoError(t, err)
		require.False(t, ok, "a user with a quota: the transaction counts")
		ok, err = s.CreateFast(ctx, keyed(u, "k2", "fp"))
		require.NoError(t, err)
		require.False(t, ok, "a user with a quota and a new key: the transaction counts")
		_, _, err = s.CreateJobOnce(ctx, keyed(u, "k2", "fp"))
		require.NoError(t, err, "the third of three")
		_, _, err = s.CreateJobOnce(ctx, keyed(u, "k3", "fp"))
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(err), "3 jobs run already")
		_, replayed, err := s.CreateJobOnce(ctx, keyed(u, "k2", "fp"))
		require.NoError(t, err)
		require.True(t, replayed, "a replay is no new job: the quota does not refuse it")
	})
}

// TestConcurrentCreationsCommitTogether: creations arriving together share
// transactions (group commit), and each still gets a job of its own.
func TestConcurrentCreationsCommitTogether(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		const n = 200
		before := s.CreationBatches()
		ids := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				j, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg",
					SourceKind: job.SourceHTTP})
				ids[i], errs[i] = j.ID, err
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, slices.Compact(slices.Sorted(slices.Values(ids))), n, "a job each")
		jobs, _, err := s.ListJobs(ctx, u.ID, n+1, "")
		require.NoError(t, err)
		require.Len(t, jobs, n)
		batches := s.CreationBatches() - before
		require.Less(t, batches, int64(n), "creations waiting together went in together")
		t.Logf("%d creations in %d batches", n, batches)
	})
}

// TestARefusedCreationDoesNotTakeItsBatchDown: a creation the database
// refuses (its user is gone) aborts the transaction it shares; the others
// are sent again on their own, each created once.
func TestARefusedCreationDoesNotTakeItsBatchDown(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ok := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP}
		gone := ok
		gone.UserID = uuid.NewString()
		jobs, errs := s.CreateTogether([]store.NewJob{ok, gone, ok})
		require.NoError(t, errs[0])
		require.Error(t, errs[1], "no such user")
		require.NoError(t, errs[2])
		require.NotEqual(t, jobs[0].ID, jobs[2].ID)
		listed, _, err := s.ListJobs(context.Background(), u.ID, 10, "")
		require.NoError(t, err)
		require.Len(t, listed, 2, "the batch's first creation was rolled back, then created once")
	})
}

// TestCreationsTogetherKeepTheirOwnFields: creations sent in one statement
// (one row each of its arrays) each get the job they asked for, every
// field as given — a zipped column off by one, or a type the arrays lose
// (a boolean, a number, the vocabulary's JSON), would show — and a user
// with a quota among them gets no job from it, for the transaction to
// count, while the others get theirs.
func TestCreationsTogetherKeepTheirOwnFields(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "three", MaxConcurrent: 3}))
		limited, err := s.CreateUser(ctx, "limited", store.RoleUser, "three")
		require.NoError(t, err)
		asked := []store.NewJob{
			{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a", SourceKind: job.SourceHTTP,
				Source: job.SourceAuto, Language: "fr", Engine: "whisper", Model: "large-v3", Task: "translate", Prompt: "Bonjour",
				Speakers: true, MinSpeakers: 2, MaxSpeakers: 4, Vocabulary: []string{"Nomad", `"quoted"`}, RepetitionGuard: true,
				WebhookURL: "https://hooks.example.com/a", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", MaxAttempts: 5},
			{UserID: limited.ID, URL: "http://example.com/b.ogg", CanonicalURL: "http://example.com/b.ogg", SourceKind: job.SourceHTTP},
			{UserID: u.ID, URL: "https://www.youtube.com/watch?v=dQw4w9WgXcQ", CanonicalURL: "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
				SourceKind: job.SourceYouTube, Source: job.SourceCaptions, SilenceGuard: true, MaxAttempts: 1},
		}
		jobs, errs := s.CreateTogether(asked)
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Empty(t, jobs[1].ID, "a user with a quota: the transaction counts")
		for _, i := range []int{0, 2} {
			n, j := asked[i], jobs[i]
			require.NotEmpty(t, j.ID)
			got, err := s.GetJob(ctx, n.UserID, j.ID)
			require.NoError(t, err)
			require.Equal(t, got, j, "creation %d: the job as created is the job as stored", i)
			for _, j := range []job.Job{j, got} { // as returned, and as stored
				require.Equal(t, job.StatusQueued, j.Status)
				require.Equal(t, []any{n.UserID, n.URL, n.CanonicalURL, n.SourceKind, n.Source, cmp.Or(n.Language, "auto"), n.Engine, n.Model,
					cmp.Or(n.Task, "transcribe"), n.Prompt, n.Speakers, n.MinSpeakers, n.MaxSpeakers, n.Vocabulary, n.SilenceGuard, n.RepetitionGuard,
					n.TraceParent, n.MaxAttempts},
					[]any{j.UserID, j.URL, j.CanonicalURL, j.SourceKind, j.Source, j.Language, j.Engine, j.Model,
						j.Task, j.Prompt, j.Speakers, j.MinSpeakers, j.MaxSpeakers, j.Vocabulary, j.Guards.Silence, j.Guards.Repetition,
						j.TraceParent, j.MaxAttempts}, "creation %d", i)
			}
		}
		listed, _, err := s.ListJobs(ctx, limited.ID, 10, "")
		require.NoError(t, err)
		require.Empty(t, listed, "the statement created nothing for the user with a quota")
	})
}

// TestACreatedJobIsAsStored: the job a creation answers with — built from
// what it asked for and the few columns it reads back — is the row as
// stored, field for field, with a key and without, on either path.
func TestACreatedJobIsAsStored(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		n := store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP,
			Vocabulary: []string{"Consul"}, Speakers: true, MaxSpeakers: 3, SilenceGuard: true}
		withKey := n
		withKey.IdempotencyKey, withKey.Fingerprint = "k", []byte("fp")
		for _, n := range []store.NewJob{n, withKey} {
			j, _, err := s.CreateJobOnce(ctx, n)
			require.NoError(t, err)
			got, err := s.GetJob(ctx, u.ID, j.ID)
			require.NoError(t, err)
			require.Equal(t, got, j, "key %q", n.IdempotencyKey)
		}
	})
}

// TestCreateJobsOnceSendsTogetherWhatNeedsNoTransaction: creations handed
// over together go to the group commit in one batch, and each gets what
// CreateJobOnce would give it alone — a job, the transaction's count for a
// user with a quota, a replay for a key seen before, a refusal for a user
// who is gone — in its own place.
func TestCreateJobsOnceSendsTogetherWhatNeedsNoTransaction(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		plain := func(i int) store.NewJob {
			url := fmt.Sprintf("http://example.com/%d.ogg", i)
			return store.NewJob{UserID: u.ID, URL: url, CanonicalURL: url, SourceKind: job.SourceHTTP}
		}
		var ns []store.NewJob
		for i := range 12 {
			ns = append(ns, plain(i))
		}
		before := s.CreationBatches()
		made := s.CreateJobsOnce(ctx, ns)
		require.Equal(t, int64(1), s.CreationBatches()-before, "12 creations handed over together: one batch")
		for i, m := range made {
			require.NoError(t, m.Err)
			require.Equal(t, ns[i].URL, m.Job.URL, "creation %d's answer in its place", i)
			require.False(t, m.Replayed)
		}

		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "one", MaxConcurrent: 1}))
		limited, err := s.CreateUser(ctx, "limited", store.RoleUser, "one")
		require.NoError(t, err)
		_, _, err = s.CreateJobOnce(ctx, keyed(u, "seen", "fp"))
		require.NoError(t, err)
		atQuota := store.NewJob{UserID: limited.ID, URL: "http://example.com/q.ogg", CanonicalURL: "http://example.com/q.ogg", SourceKind: job.SourceHTTP}
		gone := plain(99)
		gone.UserID = uuid.NewString()
		made = s.CreateJobsOnce(ctx, []store.NewJob{plain(100), atQuota, keyed(u, "seen", "fp"), atQuota, gone, keyed(u, "seen", "other")})
		require.NoError(t, made[0].Err)
		require.Equal(t, "http://example.com/100.ogg", made[0].Job.URL)
		// The two at the quota take the transaction side by side: one gets
		// the user's one job, whichever counts first.
		won, lost := made[1], made[3]
		if won.Err != nil {
			won, lost = lost, won
		}
		require.NoError(t, won.Err, "the user's one job")
		require.Equal(t, limited.ID, won.Job.UserID)
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(lost.Err), "the second over the quota of one")
		require.NoError(t, made[2].Err)
		require.True(t, made[2].Replayed, "a key seen before replays")
		require.Error(t, made[4].Err, "no such user")
		require.Equal(t, job.CodeIdempotencyKey, job.CodeOf(made[5].Err))
	})
}
