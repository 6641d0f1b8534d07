package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// TestFailJobStoresOnlyTheContractsCodes: a gpu-node's failure code lands on
// the job, where clients switch on it, so a code outside package errcode
// (a node out of step with the contract) is refused and the job keeps its
// lease; every job failure code of the contract is taken.
func TestFailJobStoresOnlyTheContractsCodes(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j := readyJob(ctx, t, a, "https://example.com/a.ogg")
	acq, err := a.worker.AcquireJob(ctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "gpu-1", Engines: []string{"sphinx"}}))
	require.NoError(t, err)
	asg := acq.Msg.GetAssignment()
	fail := func(code string, retryable bool) error {
		_, err := a.worker.FailJob(ctx, connect.NewRequest(&ytcaptionv1.FailJobRequest{JobId: j.ID, Epoch: asg.GetEpoch(),
			Error: &ytcaptionv1.JobError{Code: code, Message: "test"}, Retryable: retryable}))
		return err
	}

	for _, code := range []string{"audio_missing", "not_found", "internal"} {
		err := fail(code, false)
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), code)
		require.Equal(t, job.CodeInvalidArgument, detailOf(t, err), code)
		require.Contains(t, err.Error(), code)
	}
	got, err := a.store.GetJob(ctx, a.user.ID, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusTranscribing, got.Status, "still the node's")

	require.NoError(t, fail(errcode.AudioUnavailable, false))
	got, err = a.store.GetJob(ctx, a.user.ID, j.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusFailed, got.Status)
	require.Equal(t, errcode.AudioUnavailable, got.ErrorCode)
}

// TestAcquireJobRoutesByWhatTheNodeAdvertises: a node gets only jobs its
// engine, as it describes it in the poll, can serve, and creation then
// checks jobs against what it said. A node of the previous version, which
// names its engines only, is taken to transcribe without a prompt.
func TestAcquireJobRoutesByWhatTheNodeAdvertises(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j, err := a.store.CreateJob(ctx, store.NewJob{UserID: a.user.ID, URL: "u", CanonicalURL: "u", SourceKind: job.SourceHTTP, Language: "de", Task: "translate"})
	require.NoError(t, err)
	c, ok, err := a.store.ClaimQueued(ctx, "core", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, a.store.MarkReady(ctx, c.ID, c.Epoch, store.Media{AudioKey: "audio/" + c.ID + ".wav"}))
	// A deadline within a second: the poll looks once and answers.
	poll := func(req *ytcaptionv1.AcquireJobRequest) *ytcaptionv1.Assignment {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		acq, err := a.worker.AcquireJob(pctx, connect.NewRequest(req))
		require.NoError(t, err)
		return acq.Msg.GetAssignment()
	}

	require.Nil(t, poll(&ytcaptionv1.AcquireJobRequest{NodeId: "old", Engines: []string{"whispercpp"}, Models: []string{"base.en"}}),
		"a node of the previous version is not trusted to translate")
	require.Nil(t, poll(&ytcaptionv1.AcquireJobRequest{NodeId: "en-only", Capabilities: []*ytcaptionv1.EngineCapabilities{
		{Name: "whispercpp", Languages: []string{"en"}, Translate: true}}}), "it does not know German")
	asg := poll(&ytcaptionv1.AcquireJobRequest{NodeId: "new", Capabilities: []*ytcaptionv1.EngineCapabilities{
		{Name: "whispercpp", Models: []string{"large-v3"}, Translate: true, Prompt: true}}})
	require.NotNil(t, asg)
	require.Equal(t, j.ID, asg.GetJobId())

	offers, err := a.store.Offers(ctx, time.Hour)
	require.NoError(t, err)
	require.ElementsMatch(t, []engines.Caps{
		{Name: "whispercpp", Models: []string{"base.en"}},
		{Name: "whispercpp", Languages: []string{"en"}, Translate: true},
		{Name: "whispercpp", Models: []string{"large-v3"}, Translate: true, Prompt: true},
	}, offers, "what each node said, recorded for the creation checks")
}

// TestAcquireJobRefusesAFloodOfEngines: every advertised engine becomes a
// clause of the claim's SQL, so a node (buggy or not ours) that advertises
// thousands within the 1 MiB message would have core build and cache a
// statement that large on every poll. Past the bound it is refused first.
func TestAcquireJobRefusesAFloodOfEngines(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	caps := make([]*ytcaptionv1.EngineCapabilities, 5000)
	names := make([]string, 5000)
	for i := range caps {
		names[i] = fmt.Sprintf("engine-%d", i)
		caps[i] = &ytcaptionv1.EngineCapabilities{Name: names[i]}
	}
	for _, req := range []*ytcaptionv1.AcquireJobRequest{
		{NodeId: "flood", Capabilities: caps},
		{NodeId: "flood-old", Engines: names}, // a node of the previous version
	} {
		_, err := a.worker.AcquireJob(ctx, connect.NewRequest(req))
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		require.Equal(t, job.CodeInvalidArgument, detailOf(t, err))
		require.Contains(t, err.Error(), "5000 engines advertised; at most 16")
	}
	agents, err := a.store.ListAgents(ctx)
	require.NoError(t, err)
	require.Empty(t, agents, "refused before anything is recorded")
}

// TestReleaseJobWaitsAsAskedWithinACap: a node handing a job back for a
// blob-store or disk fault asks for a pause; the job is not claimable
// before it, no attempt is spent, and a node cannot park a job past
// maxReleaseDelay, nor ask for a negative pause.
func TestReleaseJobWaitsAsAskedWithinACap(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	for _, c := range []struct {
		ask  time.Duration
		want time.Duration
	}{{10 * time.Second, 10 * time.Second}, {24 * time.Hour, maxReleaseDelay}, {-time.Hour, 0}} {
		j := readyJob(ctx, t, a, fmt.Sprintf("https://example.com/%d.ogg", c.ask))
		acq, err := a.worker.AcquireJob(ctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "gpu-1", Engines: []string{"sphinx"}}))
		require.NoError(t, err)
		require.Equal(t, j.ID, acq.Msg.GetAssignment().GetJobId())
		before := time.Now()
		_, err = a.worker.ReleaseJob(ctx, connect.NewRequest(&ytcaptionv1.ReleaseJobRequest{JobId: j.ID,
			Epoch: acq.Msg.GetAssignment().GetEpoch(), RetryAfterMs: c.ask.Milliseconds()}))
		require.NoError(t, err)
		got, err := a.store.GetJob(ctx, a.user.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, job.StatusReady, got.Status)
		require.Zero(t, got.Attempt, "no attempt spent")
		var runAfter time.Time
		require.NoError(t, a.db.QueryRow(ctx, `SELECT run_after FROM jobs WHERE id = $1`, j.ID).Scan(&runAfter))
		require.WithinDuration(t, before.Add(c.want), runAfter, 2*time.Second, "asked %s", c.ask)
		poll, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		again, err := a.worker.AcquireJob(poll, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "gpu-2", Engines: []string{"sphinx"}}))
		cancel()
		if c.want > 0 {
			require.True(t, err != nil || again.Msg.GetAssignment() == nil, "not claimable during the pause")
		}
	}
}
