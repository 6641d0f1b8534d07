package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/consultest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

func TestHelpListsEnvTwins(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), nil, []string{"--help"}, func(string) string { return "" }, &out, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, out.String(), "$YTCAPTION_GPU_NODE_NODE_TOKEN")
	require.Contains(t, out.String(), "--engine")
}

func TestMissingTokenIsAUsageError(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), nil, nil, func(string) string { return "" }, &out, &out)
	require.True(t, errors.Is(err, errUsage), "%v", err)
	err = run(context.Background(), nil, []string{"--engine", "nope"}, func(k string) string {
		return map[string]string{"YTCAPTION_GPU_NODE_NODE_TOKEN": "t"}[k]
	}, &out, &out)
	require.ErrorContains(t, err, `unknown engine "nope"`)
}

// TestRegistersWithConsulByItsMetricsPort checks the registration against
// Consul's documented HTTP API (a stand-in: Consul cannot run here).
func TestRegistersWithConsulByItsMetricsPort(t *testing.T) {
	t.Parallel()
	consul := consultest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, nil, []string{"--node-token", "t", "--core-url", "http://127.0.0.1:1", "--consul-addr", consul.Addr(),
			"--advertise-addr", "gpu-7.internal", "--metrics-addr", "127.0.0.1:0", "--log-format", "text"}, func(string) string { return "" }, &out, &out)
	}()
	var reg map[string]any
	require.Eventually(t, func() bool { reg = consul.RegisteredService("ytcaption-gpu-node"); return reg != nil }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "gpu-7.internal", reg["Address"])
	require.Contains(t, reg["Check"].(map[string]any)["HTTP"], "/metrics")
	cancel()
	<-done
	require.Equal(t, []string{reg["ID"].(string)}, consul.Removed(), "deregistered when it stops")
}

// pingCore answers WorkerService.Ping for the token "t" only.
type pingCore struct {
	ytcaptionv1connect.UnimplementedWorkerServiceHandler
}

func (pingCore) Ping(ctx context.Context, req *connect.Request[ytcaptionv1.PingRequest]) (*connect.Response[ytcaptionv1.PingResponse], error) {
	if req.Header().Get("Authorization") != "Bearer t" {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown node token"))
	}
	return connect.NewResponse(&ytcaptionv1.PingResponse{Instance: "core-a"}), nil
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewWorkerServiceHandler(pingCore{}))
	core := httptest.NewServer(mux)
	defer core.Close()
	doc := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), nil, append([]string{"doctor", "--core-url", core.URL}, args...), func(string) string { return "" }, &out, &out)
		return out.String(), err
	}

	out, err := doc("--node-token", "t")
	require.NoError(t, err, out)
	require.Regexp(t, `(?m)^ok   engine pocketsphinx at /`, out)
	require.Regexp(t, `(?m)^ok   gpu    `, out, "skipped without nvidia-smi, listed with it")
	require.Contains(t, out, "ok   core   reached "+core.URL+" (replica core-a), token accepted")

	out, err = doc("--node-token", "wrong", "--engine", "whispercpp", "--whispercpp-model", "/nonexistent.bin")
	require.ErrorContains(t, err, "2 check(s) failed")
	require.Regexp(t, `(?m)^FAIL engine whisper.cpp`, out)
	require.Regexp(t, `(?m)^FAIL core .*unauthenticated`, out)

	openai := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/models", r.URL.Path)
		_, _ = w.Write([]byte(`{"data":[]}`))
	}))
	defer openai.Close()
	out, err = doc("--node-token", "t", "--engine", "openai", "--openai-base-url", openai.URL)
	require.NoError(t, err, out)
	require.Contains(t, out, "ok   engine an OpenAI-compatible server at "+openai.URL)
}

// TestPackagingNamesOnlyRealSettings: every variable the example config
// sets is one the agent reads.
func TestPackagingNamesOnlyRealSettings(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../packaging/gpu-node.env.example")
	require.NoError(t, err)
	var help bytes.Buffer
	_ = run(context.Background(), nil, []string{"--help"}, func(string) string { return "" }, &help, &help)
	names := regexp.MustCompile(`(?m)^#?(YTCAPTION_GPU_NODE_[A-Z_]+)=`).FindAllStringSubmatch(string(b), -1)
	require.NotEmpty(t, names)
	for _, m := range names {
		require.Contains(t, help.String(), "$"+m[1], "the agent has no setting %s", m[1])
	}
}
