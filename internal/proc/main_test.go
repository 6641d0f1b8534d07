package proc

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: a
// cancelled command must not leave anything behind once Wait returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
