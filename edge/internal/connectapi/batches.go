package connectapi

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// batches is BatchService at the Connect door: authenticated, limited and
// bounded by the same door as JobService, then relayed to core, which keeps
// a batch's Idempotency-Key with the batch.
type batches struct{ f *front }

func (b batches) CreateBatch(ctx context.Context, req *connect.Request[ytcaptionv1.CreateBatchRequest]) (*connect.Response[ytcaptionv1.CreateBatchResponse], error) {
	msg := proto.CloneOf(req.Msg)
	if msg.GetIdempotencyKey() == "" {
		msg.IdempotencyKey = req.Header().Get("Idempotency-Key")
	}
	resp, err := b.f.d.Core.Batches.CreateBatch(ctx, forward(ctx, msg))
	if err == nil && resp.Msg.GetReplayed() {
		resp.Header().Set("Idempotent-Replayed", "true")
	}
	return resp, err
}

func (b batches) GetBatch(ctx context.Context, req *connect.Request[ytcaptionv1.GetBatchRequest]) (*connect.Response[ytcaptionv1.GetBatchResponse], error) {
	return b.f.d.Core.Batches.GetBatch(ctx, forward(ctx, req.Msg))
}

func (b batches) ListBatches(ctx context.Context, req *connect.Request[ytcaptionv1.ListBatchesRequest]) (*connect.Response[ytcaptionv1.ListBatchesResponse], error) {
	return b.f.d.Core.Batches.ListBatches(ctx, forward(ctx, req.Msg))
}

func (b batches) ListBatchJobs(ctx context.Context, req *connect.Request[ytcaptionv1.ListBatchJobsRequest]) (*connect.Response[ytcaptionv1.ListBatchJobsResponse], error) {
	return b.f.d.Core.Batches.ListBatchJobs(ctx, forward(ctx, req.Msg))
}

func (b batches) CancelBatch(ctx context.Context, req *connect.Request[ytcaptionv1.CancelBatchRequest]) (*connect.Response[ytcaptionv1.CancelBatchResponse], error) {
	return b.f.d.Core.Batches.CancelBatch(ctx, forward(ctx, req.Msg))
}
