package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// TestAnAdminRetryIsRefusedWhenTheFailureIsTheMedias: of jobs failed with
// each job failure code, the admin API retries those another attempt might
// end otherwise (a fault: the engine, the network, the fleet) and refuses,
// 409 conflict naming the code, those failed by the media itself — the
// dashboard's Retry button follows the same rule (errcode.RetryHelps). A
// refused job stays failed as it was.
func TestAnAdminRetryIsRefusedWhenTheFailureIsTheMedias(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newTestAPI(t, nil)
	admin := a.rootAdmin(t)

	// Every job is failed before any is retried: a retried job is queued
	// again, and would be the next one claimed.
	failed := map[string]string{} // code → job id
	for _, i := range errcode.All {
		if !errcode.IsJobFailure(i.Code) {
			continue
		}
		u := "http://example.com/" + i.Code + ".ogg"
		j, err := a.store.CreateJob(ctx, store.NewJob{UserID: a.user.ID, URL: u, CanonicalURL: u, SourceKind: job.SourceHTTP})
		require.NoError(t, err)
		c, ok, err := a.store.ClaimQueued(ctx, "core-1", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, j.ID, c.ID)
		_, err = a.store.Fail(ctx, c.ID, c.Epoch, &job.Error{Code: i.Code, Message: "it failed"})
		require.NoError(t, err)
		failed[i.Code] = j.ID
	}
	require.Contains(t, failed, errcode.NotMedia)
	require.Contains(t, failed, errcode.EngineFailed)

	for code, id := range failed {
		resp, err := admin.RetryJob(ctx, connect.NewRequest(&ytcaptionv1.RetryJobRequest{Id: id}))
		if errcode.RetryHelps(code) {
			require.NoError(t, err, code)
			require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_QUEUED, resp.Msg.GetJob().GetStatus(), code)
			continue
		}
		require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "%s: %v", code, err)
		require.Equal(t, errcode.Conflict, detailOf(t, err), code)
		require.Contains(t, err.Error(), code, "the refusal names the failure")
		j, err := a.store.GetJob(ctx, "", id)
		require.NoError(t, err)
		require.Equal(t, job.StatusFailed, j.Status, code)
		require.Equal(t, code, j.ErrorCode, "a refused retry changes nothing")
	}
}
