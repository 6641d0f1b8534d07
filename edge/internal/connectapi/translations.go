package connectapi

import (
	"context"

	"connectrpc.com/connect"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

func (f *front) CreateTranslation(ctx context.Context, req *connect.Request[ytcaptionv1.CreateTranslationRequest]) (*connect.Response[ytcaptionv1.CreateTranslationResponse], error) {
	return f.d.Core.Jobs.CreateTranslation(ctx, forward(ctx, req.Msg))
}

func (f *front) ListTranslations(ctx context.Context, req *connect.Request[ytcaptionv1.ListTranslationsRequest]) (*connect.Response[ytcaptionv1.ListTranslationsResponse], error) {
	return f.d.Core.Jobs.ListTranslations(ctx, forward(ctx, req.Msg))
}
