// Package tracing is ytcaption's OpenTelemetry plumbing, shared by the three
// binaries: a tracer provider that exports over OTLP/HTTP when an endpoint
// is configured (off by default), a Connect interceptor that continues the
// caller's trace on the server and hands it on from the client (W3C
// traceparent headers), the traceparent text a job carries from its creating
// request to the gpu-node that transcribes it, and a slog handler that puts
// trace and span ids on every log line written with a traced context.
package tracing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Provider returns service's tracer provider: spans batched to the OTLP/HTTP
// collector at endpoint (host:port, or a URL), or, with endpoint empty, a
// provider that records nothing. stop sends what is still buffered, giving
// up after 5 s.
func Provider(ctx context.Context, service, endpoint string) (tp trace.TracerProvider, stop func(), err error) {
	if endpoint == "" {
		return noop.NewTracerProvider(), func() {}, nil
	}
	opt := otlptracehttp.WithEndpoint(endpoint)
	if strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://") {
		opt = otlptracehttp.WithEndpointURL(endpoint)
	}
	exp, err := otlptracehttp.New(ctx, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	return p, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	}, nil
}

// orNoop is tp, or a provider that records nothing.
func orNoop(tp trace.TracerProvider) trace.TracerProvider {
	if tp == nil {
		return noop.NewTracerProvider()
	}
	return tp
}

// propagator is W3C Trace Context: the traceparent and tracestate headers.
var propagator = propagation.TraceContext{}

// Tracer is ytcaption's tracer from tp (nil: records nothing).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	return orNoop(tp).Tracer("github.com/ytcaption/ytcaption")
}

// Extract continues the trace the headers carry, if any.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject writes ctx's trace into the headers.
func Inject(ctx context.Context, h http.Header) {
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// TraceParent is ctx's span as a W3C traceparent ("" when ctx has none):
// what a job stores so that the node transcribing it joins its trace.
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// FromTraceParent is ctx continuing the trace of traceparent.
func FromTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// Interceptor traces Connect calls with tp: on the server a span per call
// that continues the caller's trace, on the client a span per call whose
// context travels in the request headers.
func Interceptor(tp trace.TracerProvider) connect.Interceptor {
	return interceptor{tracer: Tracer(tp)}
}

type interceptor struct{ tracer trace.Tracer }

func (i interceptor) start(ctx context.Context, spec connect.Spec, h http.Header) (context.Context, trace.Span) {
	kind := trace.SpanKindClient
	if !spec.IsClient {
		kind = trace.SpanKindServer
		ctx = Extract(ctx, h)
	}
	ctx, span := i.tracer.Start(ctx, spec.Procedure[1:], trace.WithSpanKind(kind),
		trace.WithAttributes(attribute.String("rpc.system", "connect_rpc"), attribute.String("rpc.method", spec.Procedure)))
	if spec.IsClient {
		Inject(ctx, h)
	}
	return ctx, span
}

func end(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("rpc.connect_rpc.error_code", connect.CodeOf(err).String()))
	}
	span.End()
}

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, span := i.start(ctx, req.Spec(), req.Header())
		resp, err := next(ctx, req)
		end(span, err)
		return resp, err
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		// The span covers opening the stream; its context rides the headers.
		ctx, span := i.tracer.Start(ctx, spec.Procedure[1:], trace.WithSpanKind(trace.SpanKindClient))
		defer span.End()
		conn := next(ctx, spec)
		Inject(ctx, conn.RequestHeader())
		return conn
	}
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, span := i.start(ctx, conn.Spec(), conn.RequestHeader())
		err := next(ctx, conn)
		end(span, err)
		return err
	}
}

// NewLogger returns a "json" or "text" logger writing to w whose records
// carry the trace and span ids of the context they are logged with.
func NewLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(LogHandler{slog.NewJSONHandler(w, nil)}), nil
	case "text":
		return slog.New(LogHandler{slog.NewTextHandler(w, nil)}), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text, got %q", format)
}

// LogHandler adds trace_id and span_id to records logged with a context
// that carries a recording span, so logs and traces find each other.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler { return LogHandler{h.Handler.WithGroup(name)} }
