// Package connectapi is the edge's Connect/gRPC/gRPC-Web front door: core's
// JobService for clients, behind the same gates as REST (package gate: API
// keys, per-key limits, event-stream caps, Idempotency-Key), which it adapts
// to Connect — a refusal is a Connect code with the REST error code as a
// ytcaption.v1.ErrorDetail. Only the transport differs from REST: a key used
// over one door replays over the other, and one key's event streams count
// together.
package connectapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/edge/internal/coreclient"
	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/edge/internal/jobcache"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
	"github.com/ytcaption/ytcaption/internal/connectlimit"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// Config tunes the front door.
type Config struct {
	MaxBodyBytes int // the largest message but UploadJob's, inflated; default 64 KiB
	// ClientAddrs finds a call's client address (X-Forwarded-For only from
	// trusted proxies), which refused keys are limited by.
	ClientAddrs clientaddr.Resolver
}

// Deps are what the front door stands on.
type Deps struct {
	Core     coreclient.Clients
	Gate     *gate.Gate      // shared with REST
	Finished *jobcache.Cache // jobs answered without core (package jobcache)
	// TracerProvider traces each call and hands the trace to core; nil: none.
	TracerProvider trace.TracerProvider
}

// Bounds of the front door's listener (see Server) and its calls. A
// request's header must arrive within headerTimeout and fit in headerBytes;
// its body within gate.ReadTimeout (UploadJob: gate.UploadReadTimeout). A
// unary reply must be written within unaryWriteTimeout of the call's start
// (UploadJob: of its upload's deadline); WatchJob, which may run for hours,
// is never cut by either: each of its writes gets streamWriteTimeout.
const (
	headerTimeout      = 10 * time.Second
	headerBytes        = 16 << 10
	unaryWriteTimeout  = 2 * time.Minute
	streamWriteTimeout = 30 * time.Second
	idleTimeout        = 2 * time.Minute
	// maxUploadMessage is the largest UploadJobRequest: the file and the
	// fields around it.
	maxUploadMessage = gate.MaxUploadBytes + 1<<20
	// maxTranscriptMessage is the largest SaveTranscriptRequest: a whole
	// edited transcript (core holds it to 20,000 cues).
	maxTranscriptMessage = 4 << 20
)

// Server returns the http.Server for the front door: h2c (the load balancer
// terminates TLS) and HTTP/1.1, with every timeout that cannot cut a WatchJob
// stream short, and HTTP/2's own bounds.
func Server(h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		// Covers receiving a request only: net/http lifts the deadline once
		// the body is read (HTTP/1's background read; HTTP/2 times the
		// request body alone), so neither a slow call nor a WatchJob stream
		// is cut by it (TestStreamsOutliveTheListenersTimeouts).
		ReadTimeout: gate.ReadTimeout,
		// No WriteTimeout: it would cut every WatchJob stream; the door sets
		// per-call write deadlines instead.
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: headerBytes,
		Protocols:      new(http.Protocols),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          100,
			MaxDecoderHeaderTableSize:     4 << 10,
			MaxReadFrameSize:              16 << 10,
			MaxReceiveBufferPerConnection: 1 << 20,
			MaxReceiveBufferPerStream:     1 << 20,
			SendPingTimeout:               time.Minute,
			PingTimeout:                   15 * time.Second,
			WriteByteTimeout:              streamWriteTimeout, // a peer that stops reading is dropped
		},
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	return srv
}

// New returns the Connect/gRPC/gRPC-Web front door.
//
// The door authenticates and limits a call from its headers, before
// connect-go reads the body: a request without a valid key costs no body
// read at all. Bodies are then read within per-procedure bounds that hold
// for the inflated size: connect-go inflates a unary request before any
// interceptor runs, capped only by WithReadMaxBytes.
func New(cfg Config, d Deps) http.Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	f := &front{d: d, cfg: cfg, errs: connect.NewErrorWriter()}
	path, svc := ytcaptionv1connect.NewJobServiceHandler(f,
		connect.WithInterceptors(tracing.Interceptor(d.TracerProvider)),
		connect.WithCompressMinBytes(4<<10),
		connect.WithConditionalHandlerOptions(func(spec connect.Spec) []connect.HandlerOption {
			return []connect.HandlerOption{connectlimit.Options(f.readMax(spec.Procedure), cfg.MaxBodyBytes)}
		}),
	)
	mux := http.NewServeMux()
	mux.Handle(path, f.door(svc))
	// Batches pass the same door: a call without a valid key reads no body.
	bpath, bsvc := ytcaptionv1connect.NewBatchServiceHandler(batches{f},
		connect.WithInterceptors(tracing.Interceptor(d.TracerProvider)),
		connect.WithCompressMinBytes(4<<10),
		connectlimit.Options(cfg.MaxBodyBytes, cfg.MaxBodyBytes))
	mux.Handle(bpath, f.door(bsvc))
	return mux
}

type front struct {
	d    Deps
	cfg  Config
	errs *connect.ErrorWriter
}

// readMax is the largest message procedure takes, inflated.
func (f *front) readMax(procedure string) int {
	switch procedure {
	case ytcaptionv1connect.JobServiceUploadJobProcedure:
		return maxUploadMessage
	case ytcaptionv1connect.JobServiceSaveTranscriptProcedure:
		return max(maxTranscriptMessage, f.cfg.MaxBodyBytes)
	}
	return f.cfg.MaxBodyBytes
}

type callerKey struct{}

// caller is what the door established for a call.
type caller struct {
	gate.Caller
	rc *http.ResponseController // the call's deadlines
}

func callerOf(ctx context.Context) caller { return ctx.Value(callerKey{}).(caller) }

// door runs before connect-go touches the body: it authenticates and limits
// the call, takes a stream place for WatchJob (given back however the call
// ends), bounds the body on the wire and sets the call's deadlines.
func (f *front) door(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		procedure := r.URL.Path
		c, err := f.admit(r, w.Header())
		if err != nil {
			_ = f.errs.Write(w, r, toConnect(err))
			return
		}
		c.rc = http.NewResponseController(w)
		ctx := context.WithValue(r.Context(), callerKey{}, c)
		switch procedure {
		case ytcaptionv1connect.JobServiceWatchJobProcedure:
			release, err := f.d.Gate.Stream(c.Principal)
			if err != nil {
				_ = f.errs.Write(w, r, toConnect(err))
				return
			}
			defer release()
		case ytcaptionv1connect.JobServiceUploadJobProcedure:
			_ = c.rc.SetReadDeadline(time.Now().Add(gate.UploadReadTimeout))
			_ = c.rc.SetWriteDeadline(time.Now().Add(gate.UploadReadTimeout + unaryWriteTimeout))
		default:
			_ = c.rc.SetWriteDeadline(time.Now().Add(unaryWriteTimeout))
		}
		// On the wire a message may be framed (5 bytes) or base64 (gRPC-Web
		// text, 4/3); connect-go caps the message itself.
		limit := int64(f.readMax(procedure))
		r.Body = http.MaxBytesReader(w, r.Body, limit+limit/3+4<<10)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// admit names, authenticates and rate-limits one call — creating work
// (CreateJob, UploadJob) against the create budget — writing the request id
// and the limit's headers to out.
func (f *front) admit(r *http.Request, out http.Header) (caller, error) {
	c := caller{Caller: gate.Caller{RequestID: gate.RequestID(r.Header.Get(gate.HeaderRequestID))}}
	out.Set(gate.HeaderRequestID, c.RequestID)
	addr := f.cfg.ClientAddrs.Resolve(clientaddr.Peer(r.RemoteAddr), r.Header.Values("X-Forwarded-For"))
	p, err := f.d.Gate.Authenticate(r.Context(), r.Header.Get("Authorization"), addr)
	if err != nil {
		return c, err
	}
	c.Principal = p
	create := r.URL.Path == ytcaptionv1connect.JobServiceCreateJobProcedure || r.URL.Path == ytcaptionv1connect.JobServiceUploadJobProcedure ||
		r.URL.Path == ytcaptionv1connect.BatchServiceCreateBatchProcedure || r.URL.Path == ytcaptionv1connect.JobServiceCreateTranslationProcedure ||
		r.URL.Path == ytcaptionv1connect.JobServiceCreateShareProcedure
	h, err := f.d.Gate.Limit(r.Context(), p, create)
	for k, v := range h {
		out[k] = v
	}
	return c, err
}

// connectCodes says each kind of the gate's refusals in Connect.
var connectCodes = map[gate.Kind]connect.Code{
	gate.Unauthenticated: connect.CodeUnauthenticated,
	gate.Exhausted:       connect.CodeResourceExhausted,
	gate.Unavailable:     connect.CodeUnavailable,
	gate.Invalid:         connect.CodeInvalidArgument,
	gate.KeyMismatch:     connect.CodeFailedPrecondition,
	gate.KeyInUse:        connect.CodeAborted,
}

// toConnect is a gate's refusal as a Connect error: the code for its kind,
// the REST code as an ErrorDetail, its headers (Retry-After, the limit's) in
// the error's metadata. Any other error passes unchanged: core's already are
// Connect errors.
func toConnect(err error) error {
	var ge *gate.Error
	if !errors.As(err, &ge) {
		return err
	}
	code, ok := connectCodes[ge.Kind]
	if !ok {
		code = connect.CodeInternal
	}
	ce := errcode.Connect(code, ge.Code, ge.Message)
	for k, v := range ge.Header {
		ce.Meta()[k] = v
	}
	return ce
}

// forward wraps msg for core on behalf of the caller.
func forward[T any](ctx context.Context, msg *T) *connect.Request[T] {
	return gate.Forward(callerOf(ctx).Caller, msg)
}

func (f *front) CreateJob(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobRequest]) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	msg := proto.CloneOf(req.Msg)
	if msg.GetIdempotencyKey() == "" {
		msg.IdempotencyKey = req.Header().Get("Idempotency-Key")
	}
	c, err := f.d.Gate.Create(ctx, callerOf(ctx).UserID, gate.Proto, msg,
		func(ctx context.Context, msg *ytcaptionv1.CreateJobRequest) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
			return f.d.Core.Jobs.CreateJob(ctx, forward(ctx, msg))
		})
	if err != nil {
		return nil, toConnect(err)
	}
	resp := connect.NewResponse(c.Msg)
	if c.Replayed {
		resp.Header().Set("Idempotent-Replayed", "true")
	}
	return resp, nil
}

func (f *front) UploadJob(ctx context.Context, req *connect.Request[ytcaptionv1.UploadJobRequest]) (*connect.Response[ytcaptionv1.UploadJobResponse], error) {
	return f.d.Core.Jobs.UploadJob(ctx, forward(ctx, req.Msg))
}

func (f *front) GetJob(ctx context.Context, req *connect.Request[ytcaptionv1.GetJobRequest]) (*connect.Response[ytcaptionv1.GetJobResponse], error) {
	j, err := f.d.Finished.Read(callerOf(ctx).UserID, req.Msg.GetId(), func() (*ytcaptionv1.Job, error) {
		resp, err := f.d.Core.Jobs.GetJob(ctx, forward(ctx, req.Msg))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetJob(), nil
	})
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
	defer f.d.Finished.Forget(req.Msg.GetId()) // before the answer: a read after it must see the cancel
	return f.d.Core.Jobs.CancelJob(ctx, forward(ctx, req.Msg))
}

func (f *front) DeleteJob(ctx context.Context, req *connect.Request[ytcaptionv1.DeleteJobRequest]) (*connect.Response[ytcaptionv1.DeleteJobResponse], error) {
	defer f.d.Finished.Forget(req.Msg.GetId())
	return f.d.Core.Jobs.DeleteJob(ctx, forward(ctx, req.Msg))
}

// RenameSpeakers names a job's speakers in core; this edge's copy of the
// finished job no longer shows its names.
func (f *front) RenameSpeakers(ctx context.Context, req *connect.Request[ytcaptionv1.RenameSpeakersRequest]) (*connect.Response[ytcaptionv1.RenameSpeakersResponse], error) {
	defer f.d.Finished.Forget(req.Msg.GetId())
	return f.d.Core.Jobs.RenameSpeakers(ctx, forward(ctx, req.Msg))
}

// ListCaptions asks core, which asks the site: seconds, within the door's
// unary write timeout.
func (f *front) ListCaptions(ctx context.Context, req *connect.Request[ytcaptionv1.ListCaptionsRequest]) (*connect.Response[ytcaptionv1.ListCaptionsResponse], error) {
	return f.d.Core.Jobs.ListCaptions(ctx, forward(ctx, req.Msg))
}

func (f *front) GetTranscript(ctx context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (*connect.Response[ytcaptionv1.GetTranscriptResponse], error) {
	return f.d.Core.Jobs.GetTranscript(ctx, forward(ctx, req.Msg))
}

func (f *front) WatchJob(ctx context.Context, req *connect.Request[ytcaptionv1.WatchJobRequest], out *connect.ServerStream[ytcaptionv1.WatchJobResponse]) error {
	// Writes get a rolling deadline, the end of the stream (written after
	// this returns) included: only a client that stops reading is cut off.
	rc := callerOf(ctx).rc
	defer func() { _ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) }()
	stream, err := f.d.Core.Jobs.WatchJob(ctx, forward(ctx, req.Msg))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if err := out.Send(stream.Msg()); err != nil {
			return err
		}
	}
	return stream.Err()
}
