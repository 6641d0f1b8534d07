package waittest

import (
	"testing"
	"time"
)

func TestRecvReturnsTheValue(t *testing.T) {
	t.Parallel()
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, ch, time.Minute, "the value"); got != 7 {
		t.Fatalf("Recv = %d, want 7", got)
	}
}

// recorder is a testing.TB that notes a failure instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
}

func TestRecvFailsWhenNothingComes(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	// Nothing is ever sent: the deadline is the only way out, however short.
	Recv(r, make(chan struct{}), time.Millisecond, "nothing came")
	if r.failed != "%s (waited %s)" {
		t.Fatalf("Recv did not fail the test: %q", r.failed)
	}
}
