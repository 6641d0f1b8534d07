package egress

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine running: the
// proxy's tunnels and forwarded requests must all end with Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
