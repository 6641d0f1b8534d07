package api

import (
	"context"
	"math"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// TestAcquireJobRecordsSlots: each poll says how many slots the node has
// and how many are busy; the fleet view and the slot counts behind core's
// metrics show them. A node of the previous version says nothing and runs
// one; what a node says is bounded, so no report can overflow the sums.
func TestAcquireJobRecordsSlots(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	poll := func(req *ytcaptionv1.AcquireJobRequest) { acquireOnce(t, a, req) }
	poll(&ytcaptionv1.AcquireJobRequest{NodeId: "big", Engines: []string{"openai"}, Slots: 8, SlotsBusy: 3})
	poll(&ytcaptionv1.AcquireJobRequest{NodeId: "old", Engines: []string{"sphinx"}})
	poll(&ytcaptionv1.AcquireJobRequest{NodeId: "liar", Engines: []string{"sphinx"}, Slots: math.MaxInt32, SlotsBusy: math.MaxInt32})
	poll(&ytcaptionv1.AcquireJobRequest{NodeId: "odd", Engines: []string{"sphinx"}, Slots: -4, SlotsBusy: 9})

	resp, err := a.admin.ListAgents(ctx, connect.NewRequest(&ytcaptionv1.ListAgentsRequest{}))
	require.NoError(t, err)
	got := map[string][2]int32{}
	for _, ag := range resp.Msg.GetAgents() {
		got[ag.GetNodeId()] = [2]int32{ag.GetSlots(), ag.GetSlotsBusy()}
	}
	require.Equal(t, map[string][2]int32{"big": {8, 3}, "old": {1, 0}, "liar": {1024, 1024}, "odd": {1, 1}}, got)
	n, err := a.store.CountSlots(ctx, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 8+1+1024+1, n.Total)
	require.Equal(t, 3+0+1024+1, n.Busy)
}

// TestAnIdleSlotCountsAsIdle: a slot polling while its own job runs
// prefetches (Prefetch, the node's choice per slot) and yields a fresh job to
// idle slots for the grace period (TestPrefetchClaimLeavesFreshJobsToIdleNodes,
// store); an idle slot of a node whose other slots are busy is idle however
// busy its node, and takes a fresh job at once: the grace is per slot, so a
// node of 8 slots neither hoards work while a node of 1 waits nor makes its
// own idle slots wait behind it.
func TestAnIdleSlotCountsAsIdle(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j := readyJob(ctx, t, a, "https://example.com/slots.ogg")
	asg := acquireOnce(t, a, &ytcaptionv1.AcquireJobRequest{NodeId: "big", Engines: []string{"sphinx"}, Slots: 8, SlotsBusy: 7})
	require.NotNil(t, asg, "an idle slot takes it at once, however busy its node")
	require.Equal(t, j.ID, asg.GetJobId())
}

// acquireOnce polls with a deadline within a second: core looks once and
// answers, with the assignment or without.
func acquireOnce(t *testing.T, a *testAPI, req *ytcaptionv1.AcquireJobRequest) *ytcaptionv1.Assignment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	acq, err := a.worker.AcquireJob(ctx, connect.NewRequest(req))
	require.NoError(t, err)
	return acq.Msg.GetAssignment()
}
