package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

func TestPlansSetLimitsPerUserAndDefaultToTheDeployment(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		key, err := s.CreateAPIKey(ctx, u.ID)
		require.NoError(t, err)

		got, err := s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, store.Plan{Name: store.DefaultPlan}, got.Plan, "a new user is on the default plan, which pins nothing")

		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "pro", CreateRate: 50, CreateBurst: 100, ReadRate: 500}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "pro"))
		got, err = s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, store.Plan{Name: "pro", CreateRate: 50, CreateBurst: 100, ReadRate: 500}, got.Plan)

		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "pro", CreateRate: 60}), "setting a plan again replaces it")
		got, err = s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, store.Plan{Name: "pro", CreateRate: 60}, got.Plan)

		require.Equal(t, job.CodeNotFound, job.CodeOf(s.AssignPlan(ctx, "alice", "gold")))
		require.Equal(t, job.CodeNotFound, job.CodeOf(s.AssignPlan(ctx, "nobody", "pro")))
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(s.SetPlan(ctx, store.Plan{Name: "Pro Plan"})))
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(s.SetPlan(ctx, store.Plan{Name: "neg", ReadRate: -1})))
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(s.SetPlan(ctx, store.Plan{Name: "neg", MaxStreams: -1})))
	})
}

// TestPlanMaxStreamsRoundTrips: a plan's cap on concurrent event streams is
// stored, read back with the key, and cleared (0: the edge's default) when the
// plan is set again without it.
func TestPlanMaxStreamsRoundTrips(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		key, err := s.CreateAPIKey(ctx, u.ID)
		require.NoError(t, err)
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "streams", MaxStreams: 3}))
		require.NoError(t, s.AssignPlan(ctx, "alice", "streams"))
		got, err := s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, 3, got.Plan.MaxStreams)
		p, err := s.GetPlan(ctx, "streams")
		require.NoError(t, err)
		require.Equal(t, store.Plan{Name: "streams", MaxStreams: 3}, p)

		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "streams", CreateRate: 5}))
		p, err = s.GetPlan(ctx, "streams")
		require.NoError(t, err)
		require.Zero(t, p.MaxStreams, "unset: the edge's default")
	})
}

func TestCreateUser(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "tiny", CreateRate: 1, CreateBurst: 1}))
		bob, err := s.CreateUser(ctx, "bob", store.RoleAdmin, "tiny")
		require.NoError(t, err)
		require.Equal(t, "tiny", bob.Plan.Name)
		id, err := s.UserID(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, bob.ID, id)

		_, err = s.CreateUser(ctx, "bob", store.RoleUser, store.DefaultPlan)
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "names are unique")
		_, err = s.CreateUser(ctx, "carol", "root", store.DefaultPlan)
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
		_, err = s.CreateUser(ctx, "carol", store.RoleUser, "gold")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.UserID(ctx, "carol")
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
	})
}
