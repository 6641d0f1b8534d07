package api

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// TestBatchesThroughTheAdminAPI: an admin sees every user's batches, newest
// first, a page at a time and filtered by user and status; a batch with its
// jobs; a child job's batch; and cancels another user's batch, audited.
// Users are turned away.
func TestBatchesThroughTheAdminAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newTestAPI(t, nil)
	admin := a.rootAdmin(t)
	bob, err := a.store.EnsureUser(ctx, "bob", store.RoleUser)
	require.NoError(t, err)

	create := func(as ytcaptionv1connect.BatchServiceClient, urls ...string) *ytcaptionv1.Batch {
		t.Helper()
		resp, err := as.CreateBatch(ctx, connect.NewRequest(&ytcaptionv1.CreateBatchRequest{Urls: urls}))
		require.NoError(t, err)
		return resp.Msg.GetBatch()
	}
	bobs := ytcaptionv1connect.NewBatchServiceClient(asUser(testServiceToken, bob.ID), a.URL)
	first := create(a.batches(), "https://example.com/a.ogg", "https://example.com/b.ogg")
	ofBob := create(bobs, "https://example.com/c.ogg")
	create(a.batches(), "https://example.com/d.ogg")
	create(a.batches(), "https://example.com/e.ogg")

	_, err = ytcaptionv1connect.NewAdminServiceClient(asUser(testServiceToken, a.user.ID), a.URL).
		SearchBatches(ctx, connect.NewRequest(&ytcaptionv1.SearchBatchesRequest{}))
	require.Equal(t, job.CodeForbidden, detailOf(t, err), "admins only")

	search := func(req *ytcaptionv1.SearchBatchesRequest) *ytcaptionv1.SearchBatchesResponse {
		t.Helper()
		resp, err := admin.SearchBatches(ctx, connect.NewRequest(req))
		require.NoError(t, err)
		return resp.Msg
	}
	// Two pages of two: every user's four batches, each once, newest first.
	var seen []string
	req := &ytcaptionv1.SearchBatchesRequest{Limit: 2}
	for i := range 2 {
		page := search(req)
		require.Len(t, page.GetBatches(), 2)
		for _, b := range page.GetBatches() {
			seen = append(seen, b.GetBatch().GetId())
		}
		req.PageToken = page.GetNextPageToken()
		require.Equal(t, i == 1, req.PageToken == "", "page %d: a token unless it is the last", i+1)
	}
	require.Equal(t, first.GetId(), seen[3], "the oldest last")
	require.Equal(t, seen, dedupe(seen), "each once")

	only := search(&ytcaptionv1.SearchBatchesRequest{UserId: bob.ID}).GetBatches()
	require.Len(t, only, 1)
	require.Equal(t, ofBob.GetId(), only[0].GetBatch().GetId())
	require.Equal(t, bob.ID, only[0].GetUserId())
	require.Empty(t, search(&ytcaptionv1.SearchBatchesRequest{Status: store.BatchCancelled}).GetBatches())

	for _, bad := range []*ytcaptionv1.SearchBatchesRequest{{Status: "bogus"}, {PageToken: "not-a-batch"}, {UserId: "bob"}} {
		_, err := admin.SearchBatches(ctx, connect.NewRequest(bad))
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%v", bad)
	}

	detail, err := admin.GetBatchDetail(ctx, connect.NewRequest(&ytcaptionv1.GetBatchDetailRequest{Id: first.GetId()}))
	require.NoError(t, err)
	require.Equal(t, a.user.ID, detail.Msg.GetBatch().GetUserId())
	require.Len(t, detail.Msg.GetJobs(), 2)
	require.Equal(t, "https://example.com/a.ogg", detail.Msg.GetJobs()[0].GetUrl(), "in the batch's order")
	child, err := admin.GetJobDetail(ctx, connect.NewRequest(&ytcaptionv1.GetJobDetailRequest{Id: detail.Msg.GetJobs()[0].GetId()}))
	require.NoError(t, err)
	require.Equal(t, first.GetId(), child.Msg.GetBatch().GetId(), "a child names its batch")
	alone, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "https://example.com/f.ogg"}))
	require.NoError(t, err)
	single, err := admin.GetJobDetail(ctx, connect.NewRequest(&ytcaptionv1.GetJobDetailRequest{Id: alone.Msg.GetJob().GetId()}))
	require.NoError(t, err)
	require.Nil(t, single.Msg.GetBatch(), "a job of its own has no batch")
	_, err = admin.GetBatchDetail(ctx, connect.NewRequest(&ytcaptionv1.GetBatchDetailRequest{Id: "00000000-0000-0000-0000-000000000000"}))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	cancelled, err := admin.AdminCancelBatch(ctx, connect.NewRequest(&ytcaptionv1.AdminCancelBatchRequest{Id: first.GetId()}))
	require.NoError(t, err)
	require.Equal(t, ytcaptionv1.BatchStatus_BATCH_STATUS_CANCELLED, cancelled.Msg.GetBatch().GetStatus())
	require.EqualValues(t, 2, cancelled.Msg.GetBatch().GetCounts().GetCancelled())
	got := search(&ytcaptionv1.SearchBatchesRequest{Status: store.BatchCancelled}).GetBatches()
	require.Len(t, got, 1)
	require.Equal(t, first.GetId(), got[0].GetBatch().GetId())
	audit, err := admin.ListAudit(ctx, connect.NewRequest(&ytcaptionv1.ListAuditRequest{}))
	require.NoError(t, err)
	var entry *ytcaptionv1.AuditEntry
	for _, e := range audit.Msg.GetEntries() {
		if e.GetAction() == "cancel_batch" {
			entry = e
		}
	}
	require.NotNil(t, entry, "the cancel is audited")
	require.Equal(t, first.GetId(), entry.GetTarget())
	require.Equal(t, "admin:root", entry.GetActor())
	require.Contains(t, entry.GetDetail(), a.user.ID)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
