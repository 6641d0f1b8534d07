package connectapi

import (
	"context"

	"connectrpc.com/connect"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

func (f *front) ListModels(ctx context.Context, req *connect.Request[ytcaptionv1.ListModelsRequest]) (*connect.Response[ytcaptionv1.ListModelsResponse], error) {
	return f.d.Core.Jobs.ListModels(ctx, forward(ctx, req.Msg))
}
