package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// TestCompleteJobHandsOutTheNextJob: complete-and-next. A request of the
// previous version (no next) completes and claims nothing; one with next
// gets the next ready job as AcquireJob would hand it — its own new epoch,
// a lease, the heartbeat interval, the audio — fenced like any: its epoch
// heartbeats, an older one is refused. With nothing ready the completion
// still stands and next is empty.
func TestCompleteJobHandsOutTheNextJob(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	for _, u := range []string{"https://example.com/1.ogg", "https://example.com/2.ogg", "https://example.com/3.ogg"} {
		readyJob(ctx, t, a, u)
	}
	poll := &ytcaptionv1.AcquireJobRequest{NodeId: "gpu-1", Engines: []string{"sphinx"}}
	acquire := func() *ytcaptionv1.Assignment {
		acq, err := a.worker.AcquireJob(ctx, connect.NewRequest(poll))
		require.NoError(t, err)
		require.NotNil(t, acq.Msg.GetAssignment())
		return acq.Msg.GetAssignment()
	}
	status := func(id string) job.Job {
		j, err := a.store.GetJob(ctx, "", id)
		require.NoError(t, err)
		return j
	}
	complete := func(asg *ytcaptionv1.Assignment, epoch int64, next *ytcaptionv1.AcquireJobRequest) (*ytcaptionv1.CompleteJobResponse, error) {
		resp, err := a.worker.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: asg.GetJobId(), Epoch: epoch, Next: next}))
		if err != nil {
			return nil, err
		}
		return resp.Msg, nil
	}

	first := acquire()
	resp, err := complete(first, first.GetEpoch(), nil)
	require.NoError(t, err, "a node of the previous version completes as before")
	require.Nil(t, resp.GetNext())
	require.Equal(t, job.StatusSucceeded, status(first.GetJobId()).Status)
	ready, err := a.store.CountUnfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, ready[job.StatusReady], "and nothing was claimed for it")

	second := acquire()
	resp, err = complete(second, second.GetEpoch(), poll)
	require.NoError(t, err)
	require.Equal(t, job.StatusSucceeded, status(second.GetJobId()).Status)
	third := resp.GetNext()
	require.NotNil(t, third, "the next ready job, in the same call")
	require.NotEqual(t, second.GetJobId(), third.GetJobId())
	held := status(third.GetJobId())
	require.Equal(t, job.StatusTranscribing, held.Status)
	require.Equal(t, "gpu-1", held.LeaseOwner)
	require.Equal(t, held.Epoch, third.GetEpoch())
	require.Equal(t, 2, int(held.Epoch), "a new epoch, as a claim by AcquireJob")
	require.WithinDuration(t, held.LeaseExpiresAt, third.GetLeaseExpiresAt().AsTime(), time.Millisecond)
	require.True(t, held.LeaseExpiresAt.After(time.Now()))
	require.NotZero(t, third.GetHeartbeatInterval().AsDuration())
	require.NotEmpty(t, third.GetAudioUrl())

	_, err = a.worker.Heartbeat(ctx, connect.NewRequest(&ytcaptionv1.HeartbeatRequest{JobId: third.GetJobId(), Epoch: third.GetEpoch() - 1}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "an older epoch is fenced off")
	_, err = complete(third, third.GetEpoch()-1, poll)
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))
	hctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond) // the held beat answers shortly before the deadline
	defer cancel()
	_, err = a.worker.Heartbeat(hctx, connect.NewRequest(&ytcaptionv1.HeartbeatRequest{JobId: third.GetJobId(), Epoch: third.GetEpoch(), NodeId: "gpu-1"}))
	require.NoError(t, err, "the next job's own epoch holds the lease")

	resp, err = complete(third, third.GetEpoch(), poll)
	require.NoError(t, err)
	require.Nil(t, resp.GetNext(), "nothing ready: no next, and no wait for one")
	require.Equal(t, job.StatusSucceeded, status(third.GetJobId()).Status)
}

// TestNodeBookWritesTheRegistryOncePerInterval: a gpu-node's registry row is
// written at its first poll, when what it advertises changes, once
// agentWriteEvery has passed, and at every poll while it is drained (so an
// undone drain takes effect at its next poll); heartbeats refresh it at most
// as often.
func TestNodeBookWritesTheRegistryOncePerInterval(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	b := newNodeBook(func() time.Time { return now })
	ad := advert([]engines.Caps{{Name: "sphinx"}}, "v1")

	require.True(t, b.touchDue("n1", ad), "first poll")
	b.touched("n1", ad, false)
	require.False(t, b.touchDue("n1", ad), "the next poll writes nothing")
	require.False(t, b.seenDue("n1"), "nor does a heartbeat")
	require.True(t, b.touchDue("n1", advert([]engines.Caps{{Name: "sphinx", Prompt: true}}, "v1")), "new capabilities")
	require.True(t, b.touchDue("n1", advert([]engines.Caps{{Name: "sphinx"}}, "v2")), "a new version")
	now = now.Add(agentWriteEvery)
	require.True(t, b.seenDue("n1"), "a heartbeat an interval on")
	require.False(t, b.touchDue("n1", ad), "which counts as the interval's write")
	now = now.Add(agentWriteEvery)
	require.True(t, b.touchDue("n1", ad), "an interval on")

	b.touched("n2", ad, true)
	require.True(t, b.touchDue("n2", ad), "a drained node's every poll reads its row")
	require.True(t, b.seenDue("n3"), "a node another replica polls")
	require.False(t, b.seenDue("n3"))
	require.True(t, b.touchDue("n3", ad), "its first poll here still writes what it advertises")
}
