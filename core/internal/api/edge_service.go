package api

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
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
// would: each is checked for its own user, in its own trace, and those that
// pass go to the store together (store.CreateJobsOnce), so their statements
// meet in one batch. A creation's error is its answer, not the call's.
func (s *EdgeService) CreateJobs(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobsRequest]) (*connect.Response[ytcaptionv1.CreateJobsResponse], error) {
	cs := req.Msg.GetCreations()
	if len(cs) > MaxCreationsPerCall {
		return nil, errcode.Connect(connect.CodeInvalidArgument, job.CodeInvalidArgument, fmt.Sprintf("at most %d creations a call, got %d", MaxCreationsPerCall, len(cs)))
	}
	results := make([]*ytcaptionv1.JobCreated, len(cs))
	type pending struct {
		i   int
		ctx context.Context
		msg *ytcaptionv1.CreateJobRequest
	}
	var waiting []pending
	var ns []store.NewJob
	for i, c := range cs {
		cctx, err := onBehalfOf(tracing.FromTraceParent(ctx, c.GetTraceparent()), c.GetUserId())
		if err != nil {
			results[i] = creationError(err)
			continue
		}
		msg := c.GetRequest()
		if msg == nil {
			msg = &ytcaptionv1.CreateJobRequest{}
		}
		n, err := s.jobs.newJob(cctx, msg)
		if err != nil {
			results[i] = creationError(toConnectError(cctx, s.jobs.log, err))
			continue
		}
		waiting, ns = append(waiting, pending{i, cctx, msg}), append(ns, n)
	}
	for k, made := range s.jobs.store.CreateJobsOnce(ctx, ns) {
		p := waiting[k]
		resp, err := s.jobs.created(p.ctx, p.msg, made.Job, made.Replayed, made.Err)
		if err != nil {
			results[p.i] = creationError(err)
			continue
		}
		results[p.i] = &ytcaptionv1.JobCreated{Response: resp}
	}
	return connect.NewResponse(&ytcaptionv1.CreateJobsResponse{Results: results}), nil
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
