package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUsage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, out.String(), "$YTCAPTION_EDGE_SERVICE_TOKEN")
	for _, env := range []string{"METRICS_ADDR", "TRUSTED_PROXIES", "FAILED_AUTH_BURST", "FAILED_AUTH_PER_MINUTE", "MAX_STREAMS"} {
		require.Contains(t, out.String(), "$YTCAPTION_EDGE_"+env, "every flag has an env twin in --help")
	}
	require.Contains(t, out.String(), "--metrics-addr\tserve Prometheus metrics")
	require.Contains(t, out.String(), "(default :8011)")
	err = run(context.Background(), nil, func(string) string { return "" }, &out, &out)
	require.True(t, errors.Is(err, errUsage), "%v", err)
	err = run(context.Background(), []string{"--service-token", "t"}, func(k string) string {
		if k == "YTCAPTION_EDGE_TRUSTED_PROXIES" {
			return "10.0.0.0/8,not-an-address"
		}
		return ""
	}, &out, &out)
	require.True(t, errors.Is(err, errUsage), "a bad trusted proxy is a usage error: %v", err)
}
