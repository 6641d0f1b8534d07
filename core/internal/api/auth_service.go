package api

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/settings"
	"github.com/ytcaption/ytcaption/core/internal/store"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// AuthService implements ytcaptionv1connect.AuthServiceHandler.
type AuthService struct {
	log      *slog.Logger
	store    *store.Store
	settings *settings.Source // the deployment's default limits
}

func (s *AuthService) Authenticate(ctx context.Context, req *connect.Request[ytcaptionv1.AuthenticateRequest]) (*connect.Response[ytcaptionv1.AuthenticateResponse], error) {
	u, err := s.store.Authenticate(ctx, req.Msg.GetApiKey())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: u.ID, Role: string(u.Role), RateLimits: s.limitsFor(u.Plan)}), nil
}

// limitsFor is plan's limits, the deployment's default where the plan has none.
func (s *AuthService) limitsFor(p store.Plan) *ytcaptionv1.RateLimits {
	pick := func(planned int, def int32) int32 {
		if planned > 0 {
			return int32(planned)
		}
		return def
	}
	d := s.settings.Get()
	return &ytcaptionv1.RateLimits{
		Create: &ytcaptionv1.RateLimit{PerSecond: pick(p.CreateRate, int32(d.CreateRate)), Burst: pick(p.CreateBurst, int32(d.CreateBurst))},
		Read:   &ytcaptionv1.RateLimit{PerSecond: pick(p.ReadRate, int32(d.ReadRate)), Burst: pick(p.ReadBurst, int32(d.ReadBurst))},
		// 0: the edge applies its own default (--max-streams).
		MaxStreams: int32(p.MaxStreams),
	}
}
