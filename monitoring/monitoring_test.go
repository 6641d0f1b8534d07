// Package monitoring holds ytcaption's Prometheus alert rules; this test runs
// promtool on them (Debian's prometheus package, installed by make deps).
package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAlertRules(t *testing.T) {
	out, err := exec.Command("promtool", "check", "rules", "alerts.yml").CombinedOutput()
	require.NoError(t, err, "promtool check rules (install prometheus: make deps): %s", out)
	out, err = exec.Command("promtool", "test", "rules", "alerts_test.yml").CombinedOutput()
	require.NoError(t, err, "promtool test rules: %s", out)
}

// TestEveryMetricTheRulesAndDashboardUseExists: a metric renamed in the code
// must not leave an alert or a panel silently empty.
func TestEveryMetricTheRulesAndDashboardUseExists(t *testing.T) {
	defined := map[string]bool{"up": true}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`"(ytcaption_[a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	require.NoError(t, err)
	for _, file := range []string{"alerts.yml", "grafana-dashboard.json"} {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		var dash map[string]any
		if strings.HasSuffix(file, ".json") {
			require.NoError(t, json.Unmarshal(b, &dash), "the dashboard is JSON")
		}
		used := regexp.MustCompile(`ytcaption_[a-z_]+`).FindAllString(string(b), -1)
		require.NotEmpty(t, used)
		for _, m := range used {
			base := regexp.MustCompile(`_(bucket|count|sum)$`).ReplaceAllString(m, "")
			require.True(t, defined[m] || defined[base], "%s uses %s, which no code exports", file, m)
		}
	}
}
