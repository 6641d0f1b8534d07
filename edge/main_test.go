package edge

import (
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/ytcaption/ytcaption/internal/leaktest"
)

// TestMain fails the package when a test leaves a goroutine running; Fiber's
// own background goroutines are expected (see leaktest.FastHTTP), and
// go-redis's dial retry after a test stops Redis (leaktest.Redis).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, slices.Concat(leaktest.FastHTTP, leaktest.Redis)...)
}
