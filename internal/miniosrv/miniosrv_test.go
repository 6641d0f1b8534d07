package miniosrv

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStartRefusesAnotherServersAddress: a server started on an address
// another MinIO holds must not take that one's liveness for its own (its
// keys are refused there): a picked port taken by another test's MinIO made
// a stack start against the wrong server.
func TestStartRefusesAnotherServersAddress(t *testing.T) {
	t.Parallel()
	bin, err := FindBinary(os.Getenv)
	require.NoError(t, err)
	ctx := context.Background()
	first, err := Start(ctx, Config{Binary: bin, Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = first.Stop() })
	require.NoError(t, first.ours(ctx), "a server accepts its own keys")

	second, err := Start(ctx, Config{Binary: bin, Dir: t.TempDir(), Addr: first.Endpoint})
	if err == nil {
		_ = second.Stop()
	}
	require.Error(t, err, "started against the first server's address")
}
