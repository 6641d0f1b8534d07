// Package waittest waits on the channels a test's goroutines report on, with
// a deadline that fails the test instead of a sleep or a hang: the one
// WaitOrTimeout every package's tests share.
package waittest

import (
	"testing"
	"time"
)

// Recv returns the next value from ch; when none comes within d it fails t
// with what, which names what was awaited ("the agent did not stop"). d is a
// bound on a hang, not a measurement: make it generous.
func Recv[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s (waited %s)", what, d)
		var zero T
		return zero
	}
}
