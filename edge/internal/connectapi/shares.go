package connectapi

import (
	"context"

	"connectrpc.com/connect"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Share links are made, listed and revoked by their job's owner; the links
// themselves are opened over REST only (GET /v1/shared/{token}), without a key.

func (f *front) CreateShare(ctx context.Context, req *connect.Request[ytcaptionv1.CreateShareRequest]) (*connect.Response[ytcaptionv1.CreateShareResponse], error) {
	return f.d.Core.Jobs.CreateShare(ctx, forward(ctx, req.Msg))
}

func (f *front) ListShares(ctx context.Context, req *connect.Request[ytcaptionv1.ListSharesRequest]) (*connect.Response[ytcaptionv1.ListSharesResponse], error) {
	return f.d.Core.Jobs.ListShares(ctx, forward(ctx, req.Msg))
}

func (f *front) RevokeShare(ctx context.Context, req *connect.Request[ytcaptionv1.RevokeShareRequest]) (*connect.Response[ytcaptionv1.RevokeShareResponse], error) {
	return f.d.Core.Jobs.RevokeShare(ctx, forward(ctx, req.Msg))
}
