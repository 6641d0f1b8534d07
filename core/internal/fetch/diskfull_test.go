package fetch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestDiskFullIsTheWorkDirectorysFault: a download that failed on ENOSPC, or
// that left the work directory with next to no space, is the disk's fault
// (handed back without spending an attempt); one that failed with room to
// spare is the media's.
func TestDiskFullIsTheWorkDirectorysFault(t *testing.T) {
	t.Parallel()
	roomy := t.TempDir()
	if diskFull(roomy, errors.New("yt-dlp: exit status 1")) {
		t.Fatal("a failure with room to spare is not the disk's")
	}
	if !diskFull(roomy, fmt.Errorf("write: %w", &os.PathError{Op: "write", Path: "a", Err: syscall.ENOSPC})) {
		t.Fatal("ENOSPC is the disk's fault")
	}
	// A really full disk, whatever the tool said: a small tmpfs (root only).
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Logf("no tmpfs (%v: %s): the full-disk half is left to the chaos suite", err, out)
		return
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	if !diskFull(dir, errors.New("ffmpeg: exit status 1")) {
		t.Fatal("a 4 MiB disk is below the minimum free space")
	}
}
