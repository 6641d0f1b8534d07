package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// EdgeService implements ytcaptionv1connect.EdgeServiceHandler.
type EdgeService struct {
	feed     *dispatch.Feed
	stopping <-chan struct{} // closed when core begins to shut down
}

// WatchJobChanges streams the bus's feed of changed jobs to an edge; the
// first message, forget_all, says the subscription is in place. A shutting-down
// core ends the stream: the edge forgets its running jobs and reconnects,
// to another replica if there is one.
func (s *EdgeService) WatchJobChanges(ctx context.Context, _ *connect.Request[ytcaptionv1.WatchJobChangesRequest], stream *connect.ServerStream[ytcaptionv1.WatchJobChangesResponse]) error {
	if s.feed == nil {
		return connect.NewError(connect.CodeUnavailable, errors.New("this core follows no changes"))
	}
	sub, cancel := s.feed.Subscribe()
	defer cancel()
	msg := &ytcaptionv1.WatchJobChangesResponse{ForgetAll: true}
	for {
		if err := stream.Send(msg); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return nil
		case <-sub.Ready():
		}
		ids, reset := sub.Take()
		msg = &ytcaptionv1.WatchJobChangesResponse{JobIds: ids, ForgetAll: reset}
	}
}
