// Package proc runs external tools (yt-dlp, ffmpeg, speech engines) the way
// ytcaption needs: from an argument list, never a shell, in a process group of
// their own so that cancelling stops every child they started.
package proc

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// DefaultGrace is how long a cancelled process group has between SIGTERM and SIGKILL.
const DefaultGrace = 5 * time.Second

// Command is exec.CommandContext with group semantics: when ctx ends the whole
// process group gets SIGTERM, and SIGKILL once grace has passed. yt-dlp and
// ffmpeg fork helpers; killing only the leader would leave them running.
func Command(ctx context.Context, grace time.Duration, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		// A timer, not a sleeping goroutine: nothing waits for the grace
		// period to pass, and leak checks do not see a pending kill.
		pid := cmd.Process.Pid
		time.AfterFunc(grace, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		return err
	}
	// WaitDelay bounds Wait when a grandchild keeps our pipes open after the
	// leader has exited.
	cmd.WaitDelay = grace + time.Second
	return cmd
}
