package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

func (a *testAPI) batches() ytcaptionv1connect.BatchServiceClient {
	return ytcaptionv1connect.NewBatchServiceClient(asUser(testServiceToken, a.user.ID), a.URL)
}

func TestCreateBatchRefusesBadRequestsWithACode(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	many := make([]string, MaxBatchURLs+1)
	for i := range many {
		many[i] = fmt.Sprintf("https://example.com/%d.ogg", i)
	}
	for name, tc := range map[string]struct {
		req  *ytcaptionv1.CreateBatchRequest
		code string
		msg  string
	}{
		"nothing":           {&ytcaptionv1.CreateBatchRequest{}, job.CodeInvalidURL, "required"},
		"both":              {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", Urls: []string{"https://example.com/a.ogg"}}, job.CodeInvalidArgument, "not both"},
		"one video":         {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}, job.CodeInvalidURL, "POST /v1/jobs"},
		"not a URL":         {&ytcaptionv1.CreateBatchRequest{Url: "ftp://example.com/list"}, job.CodeInvalidURL, "http"},
		"a bad URL in list": {&ytcaptionv1.CreateBatchRequest{Urls: []string{"https://example.com/a.ogg", "javascript:alert(1)"}}, job.CodeInvalidURL, "urls[1]"},
		"too many URLs":     {&ytcaptionv1.CreateBatchRequest{Urls: many}, job.CodeInvalidArgument, "at most 500 URLs"},
		"max_items high":    {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", MaxItems: 1001}, job.CodeInvalidArgument, "max_items"},
		"max_items low":     {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", MaxItems: -1}, job.CodeInvalidArgument, "max_items"},
		"order":             {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", Order: "random"}, job.CodeInvalidArgument, "order"},
		"date":              {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", After: "2024-13-01"}, job.CodeInvalidArgument, "YYYY-MM-DD"},
		"dates reversed":    {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", After: "2024-02-01", Before: "2024-01-01"}, job.CodeInvalidArgument, "later than"},
		"language":          {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", Language: "../etc"}, job.CodeInvalidArgument, "language"},
		"webhook":           {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", WebhookUrl: "ftp://x"}, job.CodeInvalidArgument, "webhook_url"},
		"idempotency key":   {&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@x", IdempotencyKey: strings.Repeat("k", 300)}, job.CodeInvalidArgument, "idempotency"},
	} {
		_, err := a.batches().CreateBatch(context.Background(), connect.NewRequest(tc.req))
		require.Equal(t, tc.code, detailOf(t, err), name)
		require.ErrorContains(t, err, tc.msg, name)
	}
}

func TestBatchOfAListThroughTheAPI(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	req := &ytcaptionv1.CreateBatchRequest{Urls: []string{"https://example.com/a.ogg", "https://example.com/b.ogg", "https://example.com/a.ogg"},
		Language: "en", IdempotencyKey: "batch-1"}
	resp, err := a.batches().CreateBatch(ctx, connect.NewRequest(req))
	require.NoError(t, err)
	b := resp.Msg.GetBatch()
	require.Equal(t, ytcaptionv1.BatchStatus_BATCH_STATUS_RUNNING, b.GetStatus())
	require.EqualValues(t, 2, b.GetCounts().GetQueued(), "the same URL twice is one child")
	again, err := a.batches().CreateBatch(ctx, connect.NewRequest(req))
	require.NoError(t, err)
	require.True(t, again.Msg.GetReplayed())
	require.Equal(t, b.GetId(), again.Msg.GetBatch().GetId())

	page, err := a.batches().ListBatchJobs(ctx, connect.NewRequest(&ytcaptionv1.ListBatchJobsRequest{Id: b.GetId(), PageSize: 1}))
	require.NoError(t, err)
	require.Len(t, page.Msg.GetJobs(), 1)
	require.Equal(t, "en", page.Msg.GetJobs()[0].GetLanguage())
	next, err := a.batches().ListBatchJobs(ctx, connect.NewRequest(&ytcaptionv1.ListBatchJobsRequest{Id: b.GetId(), PageSize: 1, PageToken: page.Msg.GetNextPageToken()}))
	require.NoError(t, err)
	require.Len(t, next.Msg.GetJobs(), 1)
	require.Empty(t, next.Msg.GetNextPageToken())
	require.NotEqual(t, page.Msg.GetJobs()[0].GetId(), next.Msg.GetJobs()[0].GetId())

	playlist, err := a.batches().CreateBatch(ctx, connect.NewRequest(&ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/@somebody", MaxItems: 5, Order: "newest", After: "2024-01-01"}))
	require.NoError(t, err)
	require.Equal(t, ytcaptionv1.BatchStatus_BATCH_STATUS_ENUMERATING, playlist.Msg.GetBatch().GetStatus())
	require.Equal(t, "https://www.youtube.com/@somebody/videos", playlist.Msg.GetBatch().GetCanonicalUrl())
	require.Equal(t, "2024-01-01", playlist.Msg.GetBatch().GetAfter())

	list, err := a.batches().ListBatches(ctx, connect.NewRequest(&ytcaptionv1.ListBatchesRequest{PageSize: 1}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetBatches(), 1)
	require.NotEmpty(t, list.Msg.GetNextPageToken())

	cancelled, err := a.batches().CancelBatch(ctx, connect.NewRequest(&ytcaptionv1.CancelBatchRequest{Id: b.GetId()}))
	require.NoError(t, err)
	require.Equal(t, ytcaptionv1.BatchStatus_BATCH_STATUS_CANCELLED, cancelled.Msg.GetBatch().GetStatus())
	require.EqualValues(t, 2, cancelled.Msg.GetBatch().GetCounts().GetCancelled())

	// Another user's batch is not found.
	other := ytcaptionv1connect.NewBatchServiceClient(asUser(testServiceToken, "00000000-0000-0000-0000-000000000000"), a.URL)
	_, err = other.GetBatch(ctx, connect.NewRequest(&ytcaptionv1.GetBatchRequest{Id: b.GetId()}))
	require.Equal(t, job.CodeNotFound, detailOf(t, err))
}
