package nomad_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/nomad"
	"github.com/ytcaption/ytcaption/internal/nomadtest"
)

func TestFleetReadsNodesAndDrainsThroughTheDocumentedWireFormat(t *testing.T) {
	srv := nomadtest.Start(t, "secret-token",
		nomadtest.Node{ID: "1111", Name: "gpu-a", Status: "ready", SchedulingEligibility: "eligible",
			Allocations: []nomadtest.Allocation{{ID: "a1", JobID: "ytcaption-gpu-node", TaskGroup: "agent", ClientStatus: "running", DesiredStatus: "run"}}},
		nomadtest.Node{ID: "2222", Name: "web-1", Status: "ready", SchedulingEligibility: "eligible"})
	ctx := context.Background()

	refused, err := nomad.New(srv.URL, "wrong")
	require.NoError(t, err)
	_, err = refused.Nodes(ctx, []string{"gpu-a"})
	require.ErrorContains(t, err, "Permission denied", "the ACL token goes in X-Nomad-Token")

	f, err := nomad.New(srv.URL, "secret-token")
	require.NoError(t, err)
	nodes, err := f.Nodes(ctx, []string{"gpu-a", "gone"})
	require.NoError(t, err)
	require.Equal(t, map[string]nomad.Node{"gpu-a": {ID: "1111", Name: "gpu-a", Status: "ready", Eligibility: "eligible",
		Allocations: []nomad.Allocation{{ID: "a1", JobID: "ytcaption-gpu-node", TaskGroup: "agent", ClientStatus: "running", DesiredStatus: "run"}}}}, nodes,
		"only the named nodes, with their allocations")

	n, err := f.Drain(ctx, "gpu-a", 4*time.Hour)
	require.NoError(t, err)
	require.True(t, n.Drain)
	d := srv.Drains()
	require.Len(t, d, 1)
	require.Equal(t, "1111", d[0].NodeID)
	require.NotNil(t, d[0].DrainSpec)
	require.Equal(t, int64(4*time.Hour), d[0].DrainSpec.Deadline, "the deadline travels in nanoseconds")
	nodes, err = f.Nodes(ctx, []string{"gpu-a"})
	require.NoError(t, err)
	require.Equal(t, "ineligible", nodes["gpu-a"].Eligibility)

	_, err = f.Drain(ctx, "gpu-a", 0)
	require.NoError(t, err)
	d = srv.Drains()
	require.Nil(t, d[1].DrainSpec, "no drain spec ends the drain")
	require.True(t, d[1].MarkEligible)

	_, err = f.Drain(ctx, "nobody", time.Hour)
	require.Equal(t, job.CodeNotFound, job.CodeOf(err))
}
