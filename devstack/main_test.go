package devstack

import (
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/ytcaption/ytcaption/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine running; the
// edge's Fiber goroutines are expected (see leaktest.FastHTTP).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, slices.Concat(leaktest.FastHTTP, leaktest.Redis)...)
}
