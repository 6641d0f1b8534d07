package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
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
