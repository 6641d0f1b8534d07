package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestTheControlPlaneLinksNoEdgeOrGPUNode: ytcaption-core is the control
// plane and nothing else. The all-in-one stack (ytcaption-dev) once lived
// inside it and brought Fiber, fasthttp, go-redis, the edge and the
// speech engines into the binary that runs jobs in production.
func TestTheControlPlaneLinksNoEdgeOrGPUNode(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := regexp.MustCompile(`gofiber/|valyala/fasthttp|redis/go-redis|^github\.com/ytcaption/ytcaption/(edge|gpu-node|devstack)(/|$)`)
	var found []string
	for _, p := range strings.Fields(string(out)) {
		if forbidden.MatchString(p) {
			found = append(found, p)
		}
	}
	if len(found) > 0 {
		t.Errorf("ytcaption-core links %d packages of the edge, the gpu-node or the dev stack: %v", len(found), found)
	}
	if !strings.Contains(string(out), "github.com/ytcaption/ytcaption/core\n") {
		t.Errorf("go list printed no core package; the check would pass vacuously:\n%s", out)
	}
}
