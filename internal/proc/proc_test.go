package proc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCommandKillsWholeGroup starts a shell that forks a sleeping child, cancels,
// and checks that the child is gone too: the reason the package exists.
func TestCommandKillsWholeGroup(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command(ctx, 200*time.Millisecond, "sh", "-c", `sleep 60 & echo $! > "$1"; wait`, "sh", pidFile)
	require.NoError(t, cmd.Start())

	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.TrimSpace(string(b)) != "" {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NotZero(t, child, "child pid not written")

	cancel()
	require.Error(t, cmd.Wait())
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(child, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("child %d still alive after cancel", child)
}

// TestCommandEscalatesToSIGKILL runs a process that ignores SIGTERM.
func TestCommandEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command(ctx, 100*time.Millisecond, "sh", "-c", `trap "" TERM; sleep 60 & wait; sleep 60`)
	require.NoError(t, cmd.Start())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := cmd.Wait()
	require.Error(t, err)
	require.Less(t, time.Since(start), 10*time.Second)
}
