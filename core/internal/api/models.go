package api

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// ListModels lists what the gpu-nodes seen within offerWindow advertise —
// the same fleet that checkOffered judges a job's engine and model by, so
// every name listed is one a job may ask for.
func (s *JobService) ListModels(ctx context.Context, _ *connect.Request[ytcaptionv1.ListModelsRequest]) (*connect.Response[ytcaptionv1.ListModelsResponse], error) {
	offered, err := s.store.OfferedModels(ctx, offerWindow)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	resp := &ytcaptionv1.ListModelsResponse{}
	for _, m := range offered {
		resp.Models = append(resp.Models, &ytcaptionv1.OfferedModel{
			Model: m.Model, Engine: m.Name, Languages: m.Languages, Translate: m.Translate, Prompt: m.Prompt,
			FirstSeen: timestamppb.New(m.FirstSeen),
		})
	}
	return connect.NewResponse(resp), nil
}
