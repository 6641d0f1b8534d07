package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// The admin API's and dashboard's store methods, on both drivers. Two of
// them once failed on every fresh single box: the job search (SQLite has no
// strpos) and the fleet view (nor ARRAY(subquery)).

func createURL(t *testing.T, s *store.Store, u store.User, url string) job.Job {
	t.Helper()
	j, err := s.CreateJob(context.Background(), store.NewJob{UserID: u.ID, URL: url, CanonicalURL: url, SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	return j
}

func ids(js []job.Job) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

// TestSearchJobsFiltersOnEveryField: each filter narrows the search, the URL
// one to URLs containing the text literally — "_" and "%" are no wildcards.
func TestSearchJobsFiltersOnEveryField(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, alice := newStore(t)
		ctx := context.Background()
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		under := createURL(t, s, alice, "http://example.com/a_b.ogg")
		other := createURL(t, s, alice, "http://example.com/axb%.ogg")
		bobs := createURL(t, s, bob, "http://example.com/bob.ogg")
		c, ok, err := s.ClaimQueued(ctx, "core-1", lease) // the oldest: under
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, under.ID, c.ID)
		_, err = s.Fail(ctx, c.ID, c.Epoch, job.Errorf(job.CodeNotMedia, "no audio stream"))
		require.NoError(t, err)

		search := func(f store.JobFilter) []string {
			t.Helper()
			js, err := s.SearchJobs(ctx, f)
			require.NoError(t, err)
			return ids(js)
		}
		require.Equal(t, []string{bobs.ID, other.ID, under.ID}, search(store.JobFilter{}), "everything, newest first")
		require.Equal(t, []string{under.ID}, search(store.JobFilter{URLContains: "a_b"}))
		require.Equal(t, []string{other.ID}, search(store.JobFilter{URLContains: "b%."}))
		require.Empty(t, search(store.JobFilter{URLContains: "A_B"}), "case matters, as in strpos")
		require.Equal(t, []string{other.ID, under.ID}, search(store.JobFilter{UserID: alice.ID}))
		require.Equal(t, []string{bobs.ID, other.ID}, search(store.JobFilter{Status: job.StatusQueued}))
		require.Equal(t, []string{under.ID}, search(store.JobFilter{ErrorCode: string(job.CodeNotMedia)}))
		require.Equal(t, []string{bobs.ID}, search(store.JobFilter{Limit: 1}))
		require.Equal(t, []string{bobs.ID}, search(store.JobFilter{CreatedAfter: bobs.CreatedAt}))
		require.Equal(t, []string{other.ID, under.ID}, search(store.JobFilter{CreatedBefore: bobs.CreatedAt}))

		_, err = s.SearchJobs(ctx, store.JobFilter{UserID: "alice"})
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
		_, err = s.SearchJobs(ctx, store.JobFilter{Status: "sleeping"})
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
	})
}

// TestFleetViewListsAgentsWithTheJobsTheyHold: the fleet view shows each
// gpu-node as it last called in, the transcriptions it holds in the order it
// took them, and whether an admin drained it; a drained node hears so on its
// next call.
func TestFleetViewListsAgentsWithTheJobsTheyHold(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		draining, err := s.TouchAgent(ctx, "node-1", sphinx, "v1", store.Slots{})
		require.NoError(t, err)
		require.False(t, draining)
		_, err = s.TouchAgent(ctx, "node-2", nil, "v2", store.Slots{Total: 8, Busy: 3})
		require.NoError(t, err)
		slots, err := s.CountSlots(ctx, time.Minute)
		require.NoError(t, err)
		require.Equal(t, store.Slots{Total: 9, Busy: 3}, slots, "the fleet's slots: node-1's one (a node that says nothing has one) and node-2's 8, 3 of them busy")
		first := toTranscribing(t, s, u) // held by node-1
		second := toTranscribing(t, s, u)
		// Each statement takes far longer than the microsecond now() counts
		// in, so node-1 is now the most recently seen.
		require.NoError(t, s.SeenAgent(ctx, "node-1"))
		require.NoError(t, s.SeenAgent(ctx, "node-9"), "an agent never seen is no error")

		agents, err := s.ListAgents(ctx)
		require.NoError(t, err)
		require.Len(t, agents, 2)
		n1, n2 := agents[0], agents[1]
		require.Equal(t, "node-1", n1.NodeID)
		require.Equal(t, []string{"sphinx"}, n1.Engines)
		require.Equal(t, []string{"en-us"}, n1.Models)
		require.Equal(t, "v1", n1.Version)
		require.Equal(t, []string{first.ID, second.ID}, n1.CurrentJobs, "in the order it took them")
		require.False(t, n1.Draining)
		require.False(t, n1.LastSeen.Before(n1.FirstSeen))
		require.Equal(t, "node-2", n2.NodeID)
		require.Equal(t, []string{}, n2.Engines)
		require.Equal(t, []string{}, n2.CurrentJobs, "an empty list, not none")

		require.NoError(t, s.DrainAgent(ctx, "admin:root", "node-1", true, map[string]any{"why": "upgrade"}))
		draining, err = s.TouchAgent(ctx, "node-1", sphinx, "v1", store.Slots{})
		require.NoError(t, err)
		require.True(t, draining, "the node hears it is drained")
		agents, err = s.ListAgents(ctx)
		require.NoError(t, err)
		require.True(t, agents[0].Draining)
		require.NoError(t, s.DrainAgent(ctx, "admin:root", "node-1", false, nil))
		draining, err = s.TouchAgent(ctx, "node-1", nil, "v1", store.Slots{})
		require.NoError(t, err)
		require.False(t, draining)
		err = s.DrainAgent(ctx, "admin:root", "node-9", true, nil)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))

		log, err := s.ListAudit(ctx, time.Time{}, 10)
		require.NoError(t, err)
		require.Len(t, log, 2)
		require.Equal(t, "undrain_agent", log[0].Action)
		require.Equal(t, "drain_agent", log[1].Action)
		require.Equal(t, "node-1", log[1].Target)
		require.JSONEq(t, `{"why":"upgrade"}`, string(log[1].Detail))
	})
}

// TestOverviewAndUnfinishedCountJobsByState: the dashboard's overview counts
// top-level jobs per state and recent outcomes; the metrics count every
// unfinished job.
func TestOverviewAndUnfinishedCountJobsByState(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		runJob(t, s, u, time.Second)
		toTranscribing(t, s, u)
		create(t, s, u)
		c, _, err := s.ClaimQueued(ctx, "core-1", lease)
		require.NoError(t, err)
		_, err = s.Fail(ctx, c.ID, c.Epoch, job.Errorf(job.CodeNotMedia, "no audio stream"))
		require.NoError(t, err)
		create(t, s, u)

		o, err := s.GetOverview(ctx)
		require.NoError(t, err)
		require.Equal(t, map[job.Status]int{job.StatusSucceeded: 1, job.StatusTranscribing: 1, job.StatusFailed: 1, job.StatusQueued: 1}, o.ByStatus)
		require.Equal(t, 2, o.FinishedHour)
		require.Equal(t, 1, o.FailedHour)
		require.Equal(t, 2, o.FinishedDay)
		require.Equal(t, 1, o.FailedDay)

		un, err := s.CountUnfinished(ctx)
		require.NoError(t, err)
		require.Equal(t, map[job.Status]int{job.StatusTranscribing: 1, job.StatusQueued: 1}, un)
	})
}

// TestAdminSessionsEndOnSignOutExpiryAndRevocation: only an admin's key
// signs in; the session lives until it is signed out, expires, or its key is
// revoked.
func TestAdminSessionsEndOnSignOutExpiryAndRevocation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		root, err := s.EnsureUser(ctx, "root", store.RoleAdmin)
		require.NoError(t, err)
		k, key, err := s.IssueKey(ctx, "test", root.ID, "dashboard")
		require.NoError(t, err)
		userKey, err := s.CreateAPIKey(ctx, u.ID)
		require.NoError(t, err)

		_, _, err = s.SignIn(ctx, userKey, time.Hour)
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err), "a user's key is no admin's")
		_, _, err = s.SignIn(ctx, key+"x", time.Hour)
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err))

		id, sess, err := s.SignIn(ctx, key, time.Hour)
		require.NoError(t, err)
		require.Equal(t, root.ID, sess.UserID)
		require.Equal(t, "root", sess.Name)
		require.NotEmpty(t, sess.CSRF)
		got, err := s.Session(ctx, id)
		require.NoError(t, err)
		require.Equal(t, sess, got)
		_, err = s.Session(ctx, id+"x")
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err))
		require.NoError(t, s.SignOut(ctx, id))
		_, err = s.Session(ctx, id)
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err), "signed out")

		expired, _, err := s.SignIn(ctx, key, -time.Millisecond)
		require.NoError(t, err)
		_, err = s.Session(ctx, expired)
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err), "expired")

		live, _, err := s.SignIn(ctx, key, time.Hour)
		require.NoError(t, err)
		_, err = s.RevokeKey(ctx, "test", k.ID)
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "an admin's last live key stays")
		_, _, err = s.IssueKey(ctx, "test", root.ID, "spare")
		require.NoError(t, err)
		_, err = s.RevokeKey(ctx, "test", k.ID)
		require.NoError(t, err, "with another key, the first may go")
		_, err = s.Session(ctx, live)
		require.Equal(t, job.CodeUnauthorized, job.CodeOf(err), "its key revoked")
	})
}

// TestListUsersAndPlansByName: the accounts page lists users with their plan
// and live keys, and the plans, each by name.
func TestListUsersAndPlansByName(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "pro", MonthlyMinutes: 600}))
		_, err := s.CreateUser(ctx, "bob", store.RoleAdmin, "pro")
		require.NoError(t, err)
		_, err = s.CreateAPIKey(ctx, u.ID)
		require.NoError(t, err)

		users, err := s.ListUsers(ctx)
		require.NoError(t, err)
		require.Len(t, users, 2)
		require.Equal(t, "alice", users[0].Name)
		require.Equal(t, 1, users[0].Keys)
		require.Equal(t, "default", users[0].Plan.Name)
		require.Equal(t, "bob", users[1].Name)
		require.Equal(t, store.RoleAdmin, users[1].Role)
		require.Equal(t, "pro", users[1].Plan.Name)
		require.Equal(t, 600, users[1].Plan.MonthlyMinutes)
		require.Zero(t, users[1].Keys)

		plans, err := s.ListPlans(ctx)
		require.NoError(t, err)
		require.Len(t, plans, 2)
		require.Equal(t, "default", plans[0].Name)
		require.Equal(t, "pro", plans[1].Name)
		require.Equal(t, 600, plans[1].MonthlyMinutes)
	})
}

// TestAuditKeepsTheDetailAsJSON: an entry written outside any change reads
// back with its detail as the JSON it was.
func TestAuditKeepsTheDetailAsJSON(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.Audit(ctx, "admin:root", "sign_in", "root", map[string]any{"from": "127.0.0.1", "n": 2}))
		log, err := s.ListAudit(ctx, time.Time{}, 10)
		require.NoError(t, err)
		require.Len(t, log, 1)
		require.Equal(t, "admin:root", log[0].Actor)
		require.Equal(t, "sign_in", log[0].Action)
		require.Equal(t, "root", log[0].Target)
		var d map[string]any
		require.NoError(t, json.Unmarshal(log[0].Detail, &d), "%s", log[0].Detail)
		require.Equal(t, map[string]any{"from": "127.0.0.1", "n": 2.0}, d)
		older, err := s.ListAudit(ctx, log[0].At, 10)
		require.NoError(t, err)
		require.Empty(t, older, "before its own time: nothing")
	})
}

// TestDialectNamesTheDriver: callers that must differ per database (backup)
// learn which one the store runs on.
func TestDialectNamesTheDriver(t *testing.T) {
	seen := map[sqldb.Dialect]bool{}
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		e := open(t)
		require.Equal(t, e.DB.Dialect(), e.Store.Dialect())
		seen[e.Store.Dialect()] = true
	})
	require.Equal(t, map[sqldb.Dialect]bool{sqldb.Postgres: true, sqldb.SQLite: true}, seen)
}
