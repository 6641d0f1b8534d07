// Package monitoring holds ytcaption's Prometheus alert rules; this test runs
// promtool on them (Debian's prometheus package, installed by make deps).
package monitoring

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAlertRules(t *testing.T) {
	out, err := exec.Command("promtool", "check", "rules", "alerts.yml").CombinedOutput()
	require.NoError(t, err, "promtool check rules (install prometheus: make deps): %s", out)
	out, err = exec.Command("promtool", "test", "rules", "alerts_test.yml").CombinedOutput()
	require.NoError(t, err, "promtool test rules: %s", out)
}
