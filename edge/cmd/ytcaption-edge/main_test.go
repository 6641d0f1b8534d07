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
	err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, out.String(), "$YTCAPTION_EDGE_SERVICE_TOKEN")
	err = run(context.Background(), nil, func(string) string { return "" }, &out)
	require.True(t, errors.Is(err, errUsage), "%v", err)
}
