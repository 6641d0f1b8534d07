package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/internal/tracing"
)

// lockedBuffer is a log sink the stack's goroutines share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestOneTraceSpansEdgeCoreAndGPUNode follows one job with an in-memory span
// exporter: the client's traceparent reaches the edge's request span, core's
// CreateJob span, the gpu-node's span for the job (through the traceparent
// stored with the job and handed over in the assignment) and core's spans for
// the node's calls; the log lines of the job carry the same trace id.
func TestOneTraceSpansEdgeCoreAndGPUNode(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	logs := &lockedBuffer{}
	log, err := tracing.NewLogger("json", logs)
	require.NoError(t, err)
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.TracerProvider, c.Logger = tp, log })
	media, refs := mediaServer(t)

	// The client's own trace: everything below must join it.
	ctx, root := tp.Tracer("test").Start(context.Background(), "client")
	body, err := json.Marshal(map[string]string{"url": media + "/" + firstClip(refs) + ".ogg", "language": "en"})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, "POST", s.EdgeURL+"/v1/jobs", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	req.Header.Set("Content-Type", "application/json")
	tracing.Inject(ctx, req.Header)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var j jobJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&j))
	resp.Body.Close()
	root.End()
	c := client{t: t, base: s.EdgeURL, key: s.APIKey}
	require.Equal(t, "succeeded", c.waitFor(j.ID, 60*time.Second, terminal).Status)

	traceID := root.SpanContext().TraceID()
	byName := map[string]sdktrace.ReadOnlySpan{}
	require.Eventually(t, func() bool {
		for _, sp := range spans.GetSpans().Snapshots() {
			if sp.SpanContext().TraceID() == traceID {
				byName[sp.Name()] = sp
			}
		}
		_, done := byName["ytcaption.v1.WorkerService/CompleteJob"]
		return done && byName["gpu-node transcribe"] != nil
	}, 10*time.Second, 50*time.Millisecond, "the node's work joins the trace")

	edgeSpan := byName["POST /v1/jobs"]
	require.NotNil(t, edgeSpan, "the edge's request span")
	require.Equal(t, root.SpanContext().SpanID(), edgeSpan.Parent().SpanID(), "the edge continues the client's traceparent")
	require.Equal(t, trace.SpanKindServer, edgeSpan.SpanKind())
	var coreCreate sdktrace.ReadOnlySpan
	for _, sp := range spans.GetSpans().Snapshots() {
		if sp.SpanContext().TraceID() == traceID && sp.Name() == "ytcaption.v1.JobService/CreateJob" && sp.SpanKind() == trace.SpanKindServer {
			coreCreate = sp
		}
	}
	require.NotNil(t, coreCreate, "core's CreateJob span")
	node := byName["gpu-node transcribe"]
	require.Equal(t, coreCreate.SpanContext().SpanID(), node.Parent().SpanID(), "the node's span hangs under core's CreateJob, from the job's stored traceparent")
	var completeServer sdktrace.ReadOnlySpan
	for _, sp := range spans.GetSpans().Snapshots() {
		if sp.SpanContext().TraceID() == traceID && sp.Name() == "ytcaption.v1.WorkerService/CompleteJob" && sp.SpanKind() == trace.SpanKindServer {
			completeServer = sp
		}
	}
	require.NotNil(t, completeServer, "core's span for the node's CompleteJob, in the same trace")

	var jobLines int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"job created"`) || (strings.Contains(line, `"job acquired"`) && strings.Contains(line, `"component":"gpu-node"`)) {
			require.Contains(t, line, `"trace_id":"`+traceID.String()+`"`, line)
			jobLines++
		}
	}
	require.Equal(t, 2, jobLines, "core's and the node's log lines for the job carry its trace id")
}
