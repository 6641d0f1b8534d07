//go:build unix

package workdir

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary stand in for another process that claims a
// directory, writes a file in it, says where, and waits to be killed.
func TestMain(m *testing.M) {
	if parent := os.Getenv("WORKDIR_TEST_CLAIM"); parent != "" {
		d, _, err := Claim(parent)
		if err != nil {
			os.Exit(3)
		}
		_ = os.WriteFile(filepath.Join(d.Path, "download-1"), []byte("half a file"), 0o600)
		os.Stdout.WriteString(d.Path + "\n")
		select {}
	}
	os.Exit(m.Run())
}

// other starts another process that claims a directory under parent.
func other(t *testing.T, parent string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "WORKDIR_TEST_CLAIM="+parent)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	return cmd, line[:len(line)-1]
}

func TestADeadProcessesFilesGoWhenTheNextOneStarts(t *testing.T) {
	parent := t.TempDir()
	cmd, dead := other(t, parent)
	require.NoError(t, cmd.Process.Kill()) // kill -9: no defer runs
	_ = cmd.Wait()
	require.FileExists(t, filepath.Join(dead, "download-1"))

	d, swept, err := Claim(parent)
	require.NoError(t, err)
	require.Equal(t, 1, swept)
	require.NoDirExists(t, dead)
	require.DirExists(t, d.Path)
	require.NoError(t, d.Release())
	require.NoDirExists(t, d.Path)
}

func TestALiveProcessesDirectoryIsNeverSwept(t *testing.T) {
	parent := t.TempDir()
	_, live := other(t, parent)
	old := time.Now().Add(-30 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(live, old, old))

	d, swept, err := Claim(parent)
	require.NoError(t, err)
	defer d.Release()
	require.Zero(t, swept)
	require.Zero(t, Sweep(parent))
	require.FileExists(t, filepath.Join(live, "download-1"))
	require.NotEqual(t, live, d.Path)
}

func TestAStagingDirectoryIsLeftAloneForAMinute(t *testing.T) {
	parent := t.TempDir()
	fresh, stale := filepath.Join(parent, staging+"1"), filepath.Join(parent, staging+"2")
	other := filepath.Join(parent, "uploads")
	for _, dir := range []string{fresh, stale, other} {
		require.NoError(t, os.Mkdir(dir, 0o700))
	}
	old := time.Now().Add(-2 * time.Minute)
	require.NoError(t, os.Chtimes(stale, old, old))
	require.Equal(t, 1, Sweep(parent))
	require.DirExists(t, fresh)
	require.NoDirExists(t, stale)
	require.DirExists(t, other, "what is not a process directory is not the sweeper's")
}
