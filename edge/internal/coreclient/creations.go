package coreclient

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/gather"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

const (
	// maxGathered is the most creations one EdgeService.CreateJobs takes
	// (core's api.MaxCreationsPerCall).
	maxGathered = 64
	// maxGatheredBytes is the largest creation that is gathered; a larger
	// one (a long vocabulary) goes alone, so that a full call stays well
	// under core's 1 MiB message limit.
	maxGatheredBytes = 8 << 10
	// gatherers is how many gathered calls are in flight at once.
	gatherers = 4
	// gatheredTimeout bounds a gathered call whose creations have no
	// deadline of their own.
	gatheredTimeout = 30 * time.Second
)

// jobs is core's JobService with CreateJob gathered: the creations waiting
// when a call starts go to core together, in one EdgeService.CreateJobs,
// instead of a call each (gather.Batcher: a creation alone goes at once, as
// a plain CreateJob). Under load most of a creation's cost was the call —
// HTTP and Connect on both sides of it — and core's group commit then
// joined the statements again anyway.
//
// A core that does not know CreateJobs (older than this edge, during a
// rolling upgrade) answers Unimplemented: the creations are then sent one by
// one, and so is every later one.
type jobs struct {
	ytcaptionv1connect.JobServiceClient
	edge   ytcaptionv1connect.EdgeServiceClient
	gather gather.Batcher[*creation]
	alone  atomic.Bool // core has no CreateJobs
}

func newJobs(c ytcaptionv1connect.JobServiceClient, edge ytcaptionv1connect.EdgeServiceClient) *jobs {
	j := &jobs{JobServiceClient: c, edge: edge}
	j.gather = gather.Batcher[*creation]{Send: j.send, Max: maxGathered, Senders: gatherers}
	return j
}

// creation is one CreateJob waiting for its answer.
type creation struct {
	ctx  context.Context
	req  *connect.Request[ytcaptionv1.CreateJobRequest]
	resp *connect.Response[ytcaptionv1.CreateJobResponse]
	err  error
	done chan struct{}
}

// CreateJob creates a job, gathered with others that arrive meanwhile.
func (j *jobs) CreateJob(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobRequest]) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	if j.alone.Load() || proto.Size(req.Msg) > maxGatheredBytes {
		return j.JobServiceClient.CreateJob(ctx, req)
	}
	c := &creation{ctx: ctx, req: req, done: make(chan struct{})}
	j.gather.Add(c)
	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
		// As when a call's context ends: the job may still be created.
		code := connect.CodeCanceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code = connect.CodeDeadlineExceeded
		}
		return nil, connect.NewError(code, ctx.Err())
	}
}

// send sends a batch: one creation as CreateJob, more as CreateJobs.
func (j *jobs) send(batch []*creation) {
	defer func() {
		for _, c := range batch {
			close(c.done)
		}
	}()
	if len(batch) == 1 || j.alone.Load() {
		j.eachAlone(batch)
		return
	}
	msg := &ytcaptionv1.CreateJobsRequest{Creations: make([]*ytcaptionv1.JobCreation, len(batch))}
	for i, c := range batch {
		msg.Creations[i] = &ytcaptionv1.JobCreation{UserId: c.req.Header().Get(svcauth.UserHeader),
			Traceparent: tracing.TraceParent(c.ctx), Request: c.req.Msg}
	}
	ctx, cancel := context.WithDeadline(context.Background(), latestDeadline(batch))
	defer cancel()
	resp, err := j.edge.CreateJobs(ctx, connect.NewRequest(msg))
	if connect.CodeOf(err) == connect.CodeUnimplemented {
		j.alone.Store(true)
		j.eachAlone(batch)
		return
	}
	var results []*ytcaptionv1.JobCreated
	if err == nil {
		results = resp.Msg.GetResults()
		if len(results) != len(batch) {
			err = connect.NewError(connect.CodeInternal, errors.New("core answered a different number of creations than it was sent"))
		}
	}
	for i, c := range batch {
		if err != nil {
			c.err = err
			continue
		}
		c.resp, c.err = answer(results[i])
	}
}

// eachAlone sends each creation as a CreateJob of its own, all at once.
func (j *jobs) eachAlone(batch []*creation) {
	var wg sync.WaitGroup
	for _, c := range batch {
		wg.Go(func() { c.resp, c.err = j.JobServiceClient.CreateJob(c.ctx, c.req) })
	}
	wg.Wait()
}

// answer is a gathered creation's result as CreateJob returns it: the
// response, or the error with its code and machine-readable detail.
func answer(r *ytcaptionv1.JobCreated) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	e := r.GetError()
	if e == nil {
		if r.GetResponse() == nil {
			return nil, connect.NewError(connect.CodeInternal, errors.New("core answered a creation with neither a job nor an error"))
		}
		return connect.NewResponse(r.GetResponse()), nil
	}
	return nil, errcode.Connect(connect.Code(e.GetConnectCode()), e.GetCode(), e.GetMessage())
}

// latestDeadline is when the most patient creation of batch stops waiting:
// the gathered call may take that long.
func latestDeadline(batch []*creation) time.Time {
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return time.Now().Add(gatheredTimeout)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return latest
}
