package api

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// EdgeService implements ytcaptionv1connect.EdgeServiceHandler.
type EdgeService struct {
	feed     *dispatch.Feed
	stopping <-chan struct{} // closed when core begins to shut down
	jobs     *JobService     // CreateJobs' creations
}

// MaxCreationsPerCall bounds CreateJobs: the edge gathers at most this many.
const MaxCreationsPerCall = 64

// CreateJobs decides each of the edge's gathered creations as CreateJob
// would, all at once: their statements then meet in the store's group
// commit. A creation's error is its answer, not the call's.
func (s *EdgeService) CreateJobs(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobsRequest]) (*connect.Response[ytcaptionv1.CreateJobsResponse], error) {
	cs := req.Msg.GetCreations()
	if len(cs) > MaxCreationsPerCall {
		return nil, errcode.Connect(connect.CodeInvalidArgument, job.CodeInvalidArgument, fmt.Sprintf("at most %d creations a call, got %d", MaxCreationsPerCall, len(cs)))
	}
	results := make([]*ytcaptionv1.JobCreated, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { results[i] = s.create(ctx, c) })
	}
	wg.Wait()
	return connect.NewResponse(&ytcaptionv1.CreateJobsResponse{Results: results}), nil
}

// create is one of CreateJobs' creations, for its user and in its trace.
func (s *EdgeService) create(ctx context.Context, c *ytcaptionv1.JobCreation) *ytcaptionv1.JobCreated {
	ctx, err := onBehalfOf(tracing.FromTraceParent(ctx, c.GetTraceparent()), c.GetUserId())
	if err != nil {
		return creationError(err)
	}
	msg := c.GetRequest()
	if msg == nil {
		msg = &ytcaptionv1.CreateJobRequest{}
	}
	resp, err := s.jobs.CreateJob(ctx, connect.NewRequest(msg))
	if err != nil {
		return creationError(err)
	}
	return &ytcaptionv1.JobCreated{Response: resp.Msg}
}

// creationError is CreateJob's error err as one creation's answer.
func creationError(err error) *ytcaptionv1.JobCreated {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		ce = errcode.Connect(connect.CodeInternal, job.CodeInternal, "internal error")
	}
	return &ytcaptionv1.JobCreated{Error: &ytcaptionv1.CreationError{ConnectCode: uint32(ce.Code()), Message: ce.Message(), Code: errcode.OfConnect(ce)}}
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
