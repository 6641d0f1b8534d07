package doctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// jsRuntime is a JavaScript runtime yt-dlp can use: how to ask its version
// and the oldest major version yt-dlp accepts (0: not checked here).
type jsRuntime struct {
	binary   string
	args     []string
	minMajor int
	version  func(out string) string
}

// jsRuntimes are yt-dlp's (its wiki "EJS"): Deno ≥ 2 is its default and
// recommendation, Node ≥ 20 works with --js-runtimes node.
var jsRuntimes = map[string]jsRuntime{
	// "deno 2.9.6 (stable, release, x86_64-unknown-linux-gnu)"
	"deno": {binary: "deno", args: []string{"--version"}, minMajor: 2, version: func(out string) string { return field(firstLine(out), 1) }},
	// "v20.20.2"
	"node": {binary: "node", args: []string{"--version"}, minMajor: 20, version: func(out string) string {
		return strings.TrimPrefix(firstLine(out), "v")
	}},
	"bun": {binary: "bun", args: []string{"--version"}, version: firstLine},
	// "QuickJS version 2024-01-13" heads its help; it has no --version.
	"quickjs": {binary: "qjs", args: []string{"-h"}, version: func(out string) string {
		return strings.TrimPrefix(firstLine(out), "QuickJS version ")
	}},
}

func field(s string, i int) string {
	f := strings.Fields(s)
	if i < len(f) {
		return f[i]
	}
	return ""
}

// checkJSRuntimes tries each configured runtime ("deno", "node:/opt/node/bin/node")
// in order, as yt-dlp does, and returns the first that works ("deno 2.9.6").
// Without one a yt-dlp that needs it (current) fails YouTube: FAIL; an older
// one does not use it yet: a warning.
func checkJSRuntimes(ctx context.Context, list string, needed bool) (string, Check) {
	var problems []string
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, path, _ := strings.Cut(entry, ":")
		rt, ok := jsRuntimes[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: not a runtime yt-dlp knows (deno, node, bun, quickjs)", name))
			continue
		}
		if path == "" {
			path = rt.binary
		}
		out, err := output(ctx, path, rt.args...)
		if err != nil {
			problems = append(problems, oneLine(err.Error()))
			continue
		}
		v := rt.version(out)
		if v == "" {
			problems = append(problems, fmt.Sprintf("%s printed no version", path))
			continue
		}
		if rt.minMajor > 0 {
			major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
			if err != nil || major < rt.minMajor {
				problems = append(problems, fmt.Sprintf("%s %s is older than yt-dlp accepts (%d or later)", name, v, rt.minMajor))
				continue
			}
		}
		found := name + " " + v
		return found, Check{Name: "js runtime", Status: OK, Detail: fmt.Sprintf("%s (%s)", found, path) + skipped(problems)}
	}
	if len(problems) == 0 {
		problems = append(problems, "none configured")
	}
	c := Check{Name: "js runtime", Status: Warn, Detail: "none works: " + strings.Join(problems, "; "),
		Fix: "install Deno 2 or later (or Node 20 or later with --js-runtimes node) before updating yt-dlp, which will need it for YouTube"}
	if needed {
		c.Status = Fail
		c.Fix = "YouTube downloads miss formats without one: install Deno 2 or later and set --js-runtimes deno:/path/to/deno (docs/yt-dlp.md)"
	}
	return "", c
}

func skipped(problems []string) string {
	if len(problems) == 0 {
		return ""
	}
	return "; skipped: " + strings.Join(problems, "; ")
}
