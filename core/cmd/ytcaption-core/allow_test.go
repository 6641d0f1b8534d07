package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAllowMediaFromTakesOnlyCIDRRanges: --allow-media-from widens the
// address policy, so what is not plainly a range stops serve before anything
// starts — a host name, a bare address, a prefix out of range, a zone.
func TestAllowMediaFromTakesOnlyCIDRRanges(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"internal.example", "10.1.2.3", "10.0.0.0/33", "fe80::/10%eth0", "10.0.0.0/8,,nope"} {
		var errOut strings.Builder
		err := run(context.Background(), []string{"serve", "--allow-media-from", v, "--service-token", "s", "--node-tokens", "n"},
			func(string) string { return "" }, io.Discard, &errOut)
		require.True(t, errors.Is(err, errUsage), "%q: %v", v, err)
		require.Contains(t, err.Error()+errOut.String(), "CIDR", v)
	}
}
