package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/consultest"
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
