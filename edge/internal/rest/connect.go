package rest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
	"github.com/ytcaption/ytcaption/internal/connectlimit"
	"github.com/ytcaption/ytcaption/internal/idempotency"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// Bounds of the Connect front door's listener (see ConnectServer) and its
// calls. A request's header must arrive within connectHeaderTimeout and fit
// in connectHeaderBytes; its body within readTimeout (UploadJob: within
// uploadReadTimeout). A unary reply must be written within
// unaryWriteTimeout of the call's start (UploadJob: of its upload's
// deadline); WatchJob, which may run for hours, is never cut by either: each
// of its writes gets streamWriteTimeout.
const (
	connectHeaderTimeout = 10 * time.Second
	connectHeaderBytes   = 16 << 10
	unaryWriteTimeout    = 2 * time.Minute
	streamWriteTimeout   = 30 * time.Second
	connectIdleTimeout   = 2 * time.Minute
	// maxUploadMessage is the largest UploadJobRequest: the file and the
	// fields around it.
	maxUploadMessage = MaxUploadBytes + 1<<20
)

// ConnectServer returns the http.Server for the Connect front door: h2c
// (the load balancer terminates TLS) and HTTP/1.1, with every timeout that
// cannot cut a WatchJob stream short, and HTTP/2's own bounds.
func ConnectServer(h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: connectHeaderTimeout,
		// Covers receiving a request only: net/http lifts the deadline once
		// the body is read (HTTP/1's background read; HTTP/2 times the
		// request body alone), so neither a slow call nor a WatchJob stream
		// is cut by it (TestStreamsOutliveTheListenersTimeouts).
		ReadTimeout: readTimeout,
		// No WriteTimeout: it would cut every WatchJob stream; the door sets
		// per-call write deadlines instead.
		IdleTimeout:    connectIdleTimeout,
		MaxHeaderBytes: connectHeaderBytes,
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

// NewConnect returns the Connect/gRPC/gRPC-Web front door: core's JobService
// for clients, behind the same API-key auth, rate limits and Idempotency-Key
// as REST. It shares the REST adapter's gates (auth guard, limiter, stream
// count, replay store, fingerprint); only the transport differs.
//
// The door authenticates and limits a call from its headers, before
// connect-go reads the body: a request without a valid key costs no body
// read at all. Bodies are then read within per-procedure bounds that hold
// for the inflated size: connect-go inflates a unary request before any
// interceptor runs, capped only by WithReadMaxBytes.
func NewConnect(cfg Config, d Deps) http.Handler {
	cfg = cfg.withDefaults()
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
	return mux
}

type front struct {
	d    Deps
	cfg  Config
	errs *connect.ErrorWriter
}

// readMax is the largest message procedure takes, inflated.
func (f *front) readMax(procedure string) int {
	if procedure == ytcaptionv1connect.JobServiceUploadJobProcedure {
		return maxUploadMessage
	}
	return f.cfg.MaxBodyBytes
}

type frontKey struct{}

// caller is what the door established for a call.
type caller struct {
	p         auth.Principal
	requestID string
	rc        *http.ResponseController // the call's deadlines
}

func callerOf(ctx context.Context) caller { return ctx.Value(frontKey{}).(caller) }

// door runs before connect-go touches the body: it authenticates and limits
// the call, takes a stream place for WatchJob (given back however the call
// ends), bounds the body on the wire and sets the call's deadlines.
func (f *front) door(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		procedure := r.URL.Path
		addr := f.cfg.ClientAddrs.Resolve(clientaddr.Peer(r.RemoteAddr), r.Header.Values("X-Forwarded-For"))
		ctx, err := f.gate(r.Context(), procedure, addr, r.Header, w.Header())
		if err != nil {
			_ = f.errs.Write(w, r, err)
			return
		}
		c := callerOf(ctx)
		c.rc = http.NewResponseController(w)
		ctx = context.WithValue(ctx, frontKey{}, c)
		switch procedure {
		case ytcaptionv1connect.JobServiceWatchJobProcedure:
			most := maxStreams(c.p, f.cfg.MaxStreams)
			release, ok := f.d.Streams.Acquire(c.p.KeyID, most)
			if !ok {
				_ = f.errs.Write(w, r, frontError(connect.CodeResourceExhausted, "too_many_streams",
					fmt.Sprintf("this API key already holds %d open event streams; close one first", most)))
				return
			}
			defer release()
		case ytcaptionv1connect.JobServiceUploadJobProcedure:
			_ = c.rc.SetReadDeadline(time.Now().Add(uploadReadTimeout))
			_ = c.rc.SetWriteDeadline(time.Now().Add(uploadReadTimeout + unaryWriteTimeout))
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

// gate authenticates and rate-limits one call. It returns the context the
// handler runs with, or a Connect error carrying the same codes REST uses.
func (f *front) gate(ctx context.Context, procedure string, addr netip.Addr, h http.Header, out http.Header) (context.Context, error) {
	id := h.Get(headerRequestID)
	if !requestIDs.MatchString(id) {
		id = rand.Text()
	}
	out.Set(headerRequestID, id)
	key := svcauth.Bearer(h)
	if key == "" {
		return nil, frontError(connect.CodeUnauthenticated, "unauthorized", "send your API key as \"Authorization: Bearer <key>\"")
	}
	p, err := f.d.Guard.Authenticate(ctx, key, addr)
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		ce := frontError(connect.CodeResourceExhausted, "rate_limited", "too many invalid API keys from your address")
		ce.Meta().Set("Retry-After", strconv.Itoa(max(seconds(te.RetryAfter), 1)))
		return nil, ce
	case errors.Is(err, auth.ErrUnauthorized):
		return nil, frontError(connect.CodeUnauthenticated, "unauthorized", "the API key is not valid")
	case err != nil:
		return nil, frontError(connect.CodeUnavailable, "unavailable", "API keys cannot be checked right now; retry shortly")
	}
	create := procedure == ytcaptionv1connect.JobServiceCreateJobProcedure || procedure == ytcaptionv1connect.JobServiceUploadJobProcedure
	lim := bucketFor(p, create)
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
