package tracing

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestTraceParentRoundTripsAndLogsCarryTheIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := Tracer(tp).Start(context.Background(), "job")
	defer span.End()
	tparent := TraceParent(ctx)
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, tparent)
	got := FromTraceParent(context.Background(), tparent)
	_, child := Tracer(tp).Start(got, "later")
	require.Equal(t, span.SpanContext().TraceID(), child.SpanContext().TraceID(), "work started from the stored traceparent joins the trace")
	require.Empty(t, TraceParent(context.Background()))

	var buf bytes.Buffer
	log, err := NewLogger("json", &buf)
	require.NoError(t, err)
	log.InfoContext(ctx, "traced")
	log.Info("untraced")
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Contains(t, string(lines[0]), `"trace_id":"`+span.SpanContext().TraceID().String()+`"`)
	require.NotContains(t, string(lines[1]), "trace_id")
	_, err = NewLogger("xml", &buf)
	require.Error(t, err)
}

func TestNoEndpointMeansNoTracing(t *testing.T) {
	tp, stop, err := Provider(context.Background(), "svc", "")
	require.NoError(t, err)
	defer stop()
	ctx, span := Tracer(tp).Start(context.Background(), "x")
	defer span.End()
	require.False(t, span.SpanContext().IsValid(), "off by default: no spans, no ids")
	require.Empty(t, TraceParent(ctx))
}
