package soak

import (
	"testing"

	"github.com/ytcaption/ytcaption/internal/stacktest"
)

// The stack the soak runs is the chaos suite's (core/chaos): the real
// binaries, built and run by internal/stacktest, on a private PostgreSQL
// cluster.

// startProcess starts a binary of the stack whose metrics are at metrics.
func startProcess(t *testing.T, logDir, name, metrics string, argv ...string) *stacktest.Process {
	t.Helper()
	p := stacktest.NewProcess(t, logDir, name, argv...)
	p.Metrics = metrics
	p.Start()
	return p
}
