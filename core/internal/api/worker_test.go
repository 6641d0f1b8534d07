package api

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
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
