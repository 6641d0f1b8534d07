package rest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/internal/idempotency"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// NewConnect returns the Connect/gRPC/gRPC-Web front door: core's JobService
// for clients, behind the same API-key auth, rate limits and Idempotency-Key
// as REST. It shares the REST adapter's gates (auth cache, limiter, replay
// store, fingerprint); only the transport differs.
func NewConnect(d Deps) (string, http.Handler) {
	f := &front{d: d}
	return ytcaptionv1connect.NewJobServiceHandler(f, connect.WithInterceptors(tracing.Interceptor(d.TracerProvider), f), connect.WithCompressMinBytes(4<<10))
}

type front struct{ d Deps }

type frontKey struct{}

// caller is what the interceptor established for a call.
type caller struct {
	p         auth.Principal
	requestID string
}

func callerOf(ctx context.Context) caller { return ctx.Value(frontKey{}).(caller) }

// gate authenticates and rate-limits one call. It returns the context the
// handler runs with, or a Connect error carrying the same codes REST uses.
func (f *front) gate(ctx context.Context, procedure string, h http.Header, out http.Header) (context.Context, error) {
	id := h.Get(headerRequestID)
	if !requestIDs.MatchString(id) {
		id = rand.Text()
	}
	out.Set(headerRequestID, id)
	key := svcauth.Bearer(h)
	if key == "" {
		return nil, frontError(connect.CodeUnauthenticated, "unauthorized", "send your API key as \"Authorization: Bearer <key>\"")
	}
	p, err := f.d.Keys.Lookup(ctx, key)
	switch {
	case errors.Is(err, auth.ErrUnauthorized):
		return nil, frontError(connect.CodeUnauthenticated, "unauthorized", "the API key is not valid")
	case err != nil:
		return nil, frontError(connect.CodeUnavailable, "unavailable", "API keys cannot be checked right now; retry shortly")
	}
	lim := bucketFor(p, procedure == ytcaptionv1connect.JobServiceCreateJobProcedure)
	d := f.d.Limiter.Allow(ctx, p.KeyID, lim)
	policy, state, retry := limitHeaders(lim, d)
	out.Set("RateLimit-Policy", policy)
	out.Set("RateLimit", state)
	if !d.Allowed {
		ce := frontError(connect.CodeResourceExhausted, "rate_limited", fmt.Sprintf("too many %s requests for this API key", lim.Name))
		ce.Meta().Set("Retry-After", strconv.Itoa(retry))
		ce.Meta().Set("RateLimit-Policy", policy)
		ce.Meta().Set("RateLimit", state)
		return nil, ce
	}
	return context.WithValue(ctx, frontKey{}, caller{p: p, requestID: id}), nil
}

func frontError(code connect.Code, detail, msg string) *connect.Error {
	ce := connect.NewError(code, errors.New(msg))
	if d, err := connect.NewErrorDetail(&ytcaptionv1.ErrorDetail{Code: detail}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

// WrapUnary implements connect.Interceptor.
func (f *front) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		out := http.Header{}
		ctx, err := f.gate(ctx, req.Spec().Procedure, req.Header(), out)
		if err != nil {
			return nil, err
		}
		resp, err := next(ctx, req)
		if resp != nil {
			for k, v := range out {
				resp.Header()[k] = v
			}
		}
		return resp, err
	}
}

// WrapStreamingClient implements connect.Interceptor (unused on a server).
func (f *front) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (f *front) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := f.gate(ctx, conn.Spec().Procedure, conn.RequestHeader(), conn.ResponseHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// forward wraps msg for core on behalf of the caller.
func forward[T any](ctx context.Context, msg *T) *connect.Request[T] {
	c := callerOf(ctx)
	req := connect.NewRequest(msg)
	req.Header().Set(svcauth.UserHeader, c.p.UserID)
	req.Header().Set(headerRequestID, c.requestID)
	return req
}

func (f *front) CreateJob(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobRequest]) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	msg := proto.CloneOf(req.Msg)
	if msg.GetIdempotencyKey() == "" {
		msg.IdempotencyKey = req.Header().Get("Idempotency-Key")
	}
	key := msg.GetIdempotencyKey()
	if key != "" && !idempotency.ValidKey(key) {
		return nil, frontError(connect.CodeInvalidArgument, "invalid_idempotency_key",
			fmt.Sprintf("the idempotency key must be 1 to %d printable ASCII characters", idempotency.MaxKeyLen))
	}
	var lock *replay.Lock
	var fp []byte
	if key != "" {
		fp = idempotency.Fingerprint(msg)
		out, stored, l := f.d.Replays.Begin(ctx, callerOf(ctx).p.UserID, key, fp)
		switch out {
		case replay.Replay:
			var resp ytcaptionv1.CreateJobResponse
			if err := proto.Unmarshal(stored.Proto, &resp); err == nil && stored.Proto != nil {
				resp.Replayed = true
				r := connect.NewResponse(&resp)
				r.Header().Set("Idempotent-Replayed", "true")
				return r, nil
			}
			// Stored by an edge that kept no proto copy: ask core, which replays.
		case replay.Mismatch:
			return nil, frontError(connect.CodeFailedPrecondition, "idempotency_key_mismatch", "this idempotency key was used with different parameters")
		case replay.InUse:
			return nil, frontError(connect.CodeAborted, "idempotency_key_in_use", "a request with this idempotency key is still being processed; retry shortly")
		}
		lock = l
	}
	resp, err := f.d.Core.Jobs.CreateJob(ctx, forward(ctx, msg))
	if err != nil {
		lock.Finish(ctx, nil)
		return nil, err
	}
	lock.Finish(ctx, storedReply(fp, resp.Msg))
	if resp.Msg.GetReplayed() {
		resp.Header().Set("Idempotent-Replayed", "true")
	}
	return resp, nil
}

// storedReply is what both transports keep for a key: the REST body and the
// Connect message, so a retry over either replays it.
func storedReply(fp []byte, resp *ytcaptionv1.CreateJobResponse) *replay.Response {
	body, err := jsonBody(resp.GetJob())
	if err != nil {
		return nil
	}
	first := proto.CloneOf(resp)
	first.Replayed = false
	pb, err := proto.Marshal(first)
	if err != nil {
		return nil
	}
	return &replay.Response{Fingerprint: fp, Status: http.StatusAccepted, Body: body, Proto: pb}
}

func (f *front) UploadJob(ctx context.Context, req *connect.Request[ytcaptionv1.UploadJobRequest]) (*connect.Response[ytcaptionv1.UploadJobResponse], error) {
	return f.d.Core.Jobs.UploadJob(ctx, forward(ctx, req.Msg))
}

func (f *front) GetJob(ctx context.Context, req *connect.Request[ytcaptionv1.GetJobRequest]) (*connect.Response[ytcaptionv1.GetJobResponse], error) {
	j, err := f.d.readJob(ctx, callerOf(ctx).p.UserID, forward(ctx, req.Msg))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&ytcaptionv1.GetJobResponse{Job: j}), nil
}

func (f *front) ListJobs(ctx context.Context, req *connect.Request[ytcaptionv1.ListJobsRequest]) (*connect.Response[ytcaptionv1.ListJobsResponse], error) {
	return f.d.Core.Jobs.ListJobs(ctx, forward(ctx, req.Msg))
}

func (f *front) GetAccount(ctx context.Context, req *connect.Request[ytcaptionv1.GetAccountRequest]) (*connect.Response[ytcaptionv1.GetAccountResponse], error) {
	return f.d.Core.Jobs.GetAccount(ctx, forward(ctx, req.Msg))
}

func (f *front) CancelJob(ctx context.Context, req *connect.Request[ytcaptionv1.CancelJobRequest]) (*connect.Response[ytcaptionv1.CancelJobResponse], error) {
	return f.d.Core.Jobs.CancelJob(ctx, forward(ctx, req.Msg))
}

func (f *front) DeleteJob(ctx context.Context, req *connect.Request[ytcaptionv1.DeleteJobRequest]) (*connect.Response[ytcaptionv1.DeleteJobResponse], error) {
	defer f.d.Finished.Forget(req.Msg.GetId())
	return f.d.Core.Jobs.DeleteJob(ctx, forward(ctx, req.Msg))
}

func (f *front) GetTranscript(ctx context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (*connect.Response[ytcaptionv1.GetTranscriptResponse], error) {
	return f.d.Core.Jobs.GetTranscript(ctx, forward(ctx, req.Msg))
}

func (f *front) WatchJob(ctx context.Context, req *connect.Request[ytcaptionv1.WatchJobRequest], out *connect.ServerStream[ytcaptionv1.WatchJobResponse]) error {
	stream, err := f.d.Core.Jobs.WatchJob(ctx, forward(ctx, req.Msg))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		if err := out.Send(stream.Msg()); err != nil {
			return err
		}
	}
	return stream.Err()
}
