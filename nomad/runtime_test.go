package nomad

// What a real Nomad does with the specs beyond parsing them: the client caps
// kill_timeout at its max_kill_timeout, devices are per task, templates read
// Variables someone has to put, groups that register a service need a
// shutdown_delay, and a drain has one deadline. Nomad cannot run here, so these
// are contract tests against Nomad's documented behaviour:
//   - client block: max_kill_timeout (default "30s") caps every task's kill_timeout;
//   - job spec: a task's kill_timeout defaults to "5s"; devices are requested per task
//     under resources; group shutdown_delay waits between service deregistration and
//     the kill signal;
//   - HCL2 job specs: var.* from the variable blocks, every other reference
//     (${NOMAD_PORT_http}, ${node.unique.name}) kept as text for run time (jobspec2's
//     UnknownVariable hook), dynamic blocks expanded from for_each;
//   - node drain: system allocations are stopped last — at once on a node that runs
//     nothing else — and the autoscaler waits for every allocation to stop unless
//     node_drain_ignore_system_jobs is set.

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zclconf/go-cty/cty"
)

// Nomad's documented defaults.
const (
	defaultMaxKillTimeout = 30 * time.Second // client.max_kill_timeout
	defaultKillTimeout    = 5 * time.Second  // task.kill_timeout
)

var jobFiles = []string{"core.nomad.hcl", "edge.nomad.hcl", "gpu-node.nomad.hcl"}

// scope is a block with the evaluation context its attributes see.
type scope struct {
	label string
	body  *hclsyntax.Body
	ctx   *hcl.EvalContext
}

// evalJob evaluates a job spec as Nomad's HCL2 parser does: var.* are the
// variables' defaults overridden by vars; any other reference evaluates to its
// own "${...}" text, left for the client to interpolate.
func evalJob(t *testing.T, path string, vars map[string]cty.Value) scope {
	t.Helper()
	f := parse(t, path)
	vals := map[string]cty.Value{}
	declared := map[string]bool{}
	for _, v := range blocks(f, "variable") {
		declared[v.Labels[0]] = true
		if _, ok := v.Body.Attributes["default"]; ok {
			vals[v.Labels[0]] = value(t, v.Body, "default")
		} else {
			vals[v.Labels[0]] = cty.StringVal("<" + v.Labels[0] + ">") // required: -var
		}
	}
	for k, v := range vars {
		require.True(t, declared[k], "%s declares no variable %s", path, k)
		vals[k] = v
	}
	ctx := &hcl.EvalContext{Variables: runtimeRefs(f)}
	ctx.Variables["var"] = cty.ObjectVal(vals)
	return scope{body: f, ctx: ctx}
}

// runtimeRefs maps every reference in the file outside var.* to its own
// "${...}" text: what jobspec2's UnknownVariable hook returns.
func runtimeRefs(f *hclsyntax.Body) map[string]cty.Value {
	tree := map[string]any{}
	_ = hclsyntax.VisitAll(f, func(n hclsyntax.Node) hcl.Diagnostics {
		e, ok := n.(hclsyntax.Expression)
		if !ok {
			return nil
		}
		for _, tr := range e.Variables() {
			var names []string
			for _, step := range tr {
				switch s := step.(type) {
				case hcl.TraverseRoot:
					names = append(names, s.Name)
				case hcl.TraverseAttr:
					names = append(names, s.Name)
				}
			}
			if names[0] == "var" {
				continue
			}
			m := tree
			for i, name := range names {
				if i == len(names)-1 {
					if _, ok := m[name]; !ok {
						m[name] = "${" + strings.Join(names, ".") + "}"
					}
					break
				}
				next, ok := m[name].(map[string]any)
				if !ok {
					next = map[string]any{}
					m[name] = next
				}
				m = next
			}
		}
		return nil
	})
	var conv func(map[string]any) map[string]cty.Value
	conv = func(m map[string]any) map[string]cty.Value {
		out := map[string]cty.Value{}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				out[k] = cty.StringVal(v)
			case map[string]any:
				out[k] = cty.ObjectVal(conv(v))
			}
		}
		return out
	}
	return conv(tree)
}

// all returns the blocks of type typ in s, static ones and those a dynamic
// block expands to, each with the context its content sees.
func (s scope) all(t *testing.T, typ string) []scope {
	t.Helper()
	var out []scope
	for _, b := range s.body.Blocks {
		if b.Type == typ {
			label := ""
			if len(b.Labels) > 0 {
				label = b.Labels[0]
			}
			out = append(out, scope{label: label, body: b.Body, ctx: s.ctx})
		}
		if b.Type != "dynamic" || b.Labels[0] != typ {
			continue
		}
		iter := typ
		if a, ok := b.Body.Attributes["iterator"]; ok {
			iter = hcl.ExprAsKeyword(a.Expr)
		}
		each, diags := b.Body.Attributes["for_each"].Expr.Value(s.ctx)
		require.False(t, diags.HasErrors(), "dynamic %s for_each: %s", typ, diags.Error())
		content := one(t, b.Body, "content")
		for it := each.ElementIterator(); it.Next(); {
			k, v := it.Element()
			child := s.ctx.NewChild()
			child.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
			label := ""
			if a, ok := b.Body.Attributes["labels"]; ok {
				ls, diags := a.Expr.Value(child)
				require.False(t, diags.HasErrors(), "dynamic %s labels: %s", typ, diags.Error())
				label = ls.AsValueSlice()[0].AsString()
			}
			out = append(out, scope{label: label, body: content, ctx: child})
		}
	}
	return out
}

func (s scope) only(t *testing.T, typ, label string) scope {
	t.Helper()
	var out []scope
	for _, b := range s.all(t, typ) {
		if b.label == label {
			out = append(out, b)
		}
	}
	require.Len(t, out, 1, "one %s %q", typ, label)
	return out[0]
}

// get evaluates attribute name; ok is false when it is not set.
func (s scope) get(t *testing.T, name string) (cty.Value, bool) {
	t.Helper()
	a, ok := s.body.Attributes[name]
	if !ok {
		return cty.NilVal, false
	}
	v, diags := a.Expr.Value(s.ctx)
	require.False(t, diags.HasErrors(), "%s: %s", name, diags.Error())
	return v, true
}

func (s scope) duration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v, ok := s.get(t, name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v.AsString())
	require.NoError(t, err, name)
	return d
}

// env returns a task's env block, evaluated.
func (s scope) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range s.all(t, "env") {
		for name := range e.body.Attributes {
			v, _ := e.get(t, name)
			out[name] = v.AsString()
		}
	}
	return out
}

// nodeClass is the node.class constraint of a job or its group.
func nodeClass(t *testing.T, job, group scope) string {
	t.Helper()
	for _, s := range []scope{group, job} {
		for _, c := range s.all(t, "constraint") {
			if attr, _ := c.get(t, "attribute"); attr.AsString() == "${node.class}" {
				v, _ := c.get(t, "value")
				return v.AsString()
			}
		}
	}
	t.Fatalf("group %s has no node.class constraint", group.label)
	return ""
}

// clientCap is the max_kill_timeout of a node class's documented agent
// configuration, clients/<class>.hcl, or Nomad's default without one.
func clientCap(t *testing.T, class string) (time.Duration, string) {
	t.Helper()
	path := "clients/" + class + ".hcl"
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return defaultMaxKillTimeout, "Nomad's default (no " + path + ")"
	}
	f := parse(t, path)
	client := scope{body: one(t, f, "client"), ctx: &hcl.EvalContext{}}
	v, ok := client.get(t, "node_class")
	require.True(t, ok, "%s sets no node_class", path)
	require.Equal(t, class, v.AsString(), path)
	return client.duration(t, "max_kill_timeout", defaultMaxKillTimeout), path
}

type group struct {
	file  string
	job   scope
	group scope
}

func groups(t *testing.T, vars map[string]cty.Value) []group {
	t.Helper()
	var out []group
	for _, file := range jobFiles {
		var v map[string]cty.Value
		if file == "gpu-node.nomad.hcl" {
			v = vars
		}
		for _, job := range evalJob(t, file, v).all(t, "job") {
			for _, g := range job.all(t, "group") {
				out = append(out, group{file: file, job: job, group: g})
			}
		}
	}
	require.Len(t, out, 3)
	return out
}

// gpuNodeVariants are the gpu-node's configurations worth placing: the
// defaults, each engine on its own, and an engine server beside the agent.
var gpuNodeVariants = map[string]map[string]cty.Value{
	"defaults":        nil,
	"sphinx":          {"engine": cty.StringVal("sphinx")},
	"whispercpp":      {"engine": cty.StringVal("whispercpp"), "whispercpp_models_dir": cty.StringVal("/usr/local/share/whisper.cpp/models"), "whispercpp_model": cty.StringVal("large-v3")},
	"openai remote":   {"engine_base_url": cty.StringVal("http://speaches.internal:8000"), "openai_models": cty.StringVal("Systran/faster-whisper-large-v3")},
	"openai + server": {"engine_server_command": cty.StringVal("/usr/local/bin/speaches"), "engine_server_args": cty.ListVal([]cty.Value{cty.StringVal("serve")})},
}

// TestKillTimeoutsFitTheClientsMaxKillTimeout: a task's kill_timeout above its
// client's max_kill_timeout is silently cut to the cap ("Waiting 30s before
// force killing" for core's 35 s, and the gpu-node's drain cut from its 30 min
// to 30 s). Every class a job runs on has a documented client configuration
// whose cap covers every task placed there.
func TestKillTimeoutsFitTheClientsMaxKillTimeout(t *testing.T) {
	t.Parallel()
	for name, vars := range gpuNodeVariants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, g := range groups(t, vars) {
				class := nodeClass(t, g.job, g.group)
				limit, source := clientCap(t, class)
				for _, task := range g.group.all(t, "task") {
					kill := task.duration(t, "kill_timeout", defaultKillTimeout)
					assert.LessOrEqual(t, kill, limit, "%s: task %s's kill_timeout %s is cut to the %q clients' max_kill_timeout, %s from %s",
						g.file, task.label, kill, class, limit, source)
				}
			}
		})
	}
}

// TestGPUDeviceOnEveryTaskThatUsesTheGPU: Nomad devices are per task. The task
// that runs the engine — the engine server when one runs beside the agent, the
// agent otherwise — holds the group's one GPU.
func TestGPUDeviceOnEveryTaskThatUsesTheGPU(t *testing.T) {
	t.Parallel()
	for name, vars := range gpuNodeVariants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := evalJob(t, "gpu-node.nomad.hcl", vars).only(t, "job", "ytcaption-gpu-node").only(t, "group", "gpu-node")
			gpus := map[string]int64{}
			for _, task := range g.all(t, "task") {
				for _, res := range task.all(t, "resources") {
					for _, d := range res.all(t, "device") {
						require.Equal(t, "nvidia/gpu", d.label, "task %s", task.label)
						n, ok := d.get(t, "count")
						require.True(t, ok)
						gpus[task.label] += mustInt(t, n)
					}
				}
			}
			engineTask := "agent"
			if _, ok := vars["engine_server_command"]; ok {
				engineTask = "engine-server"
				g.only(t, "task", "engine-server")
			}
			require.Equal(t, map[string]int64{engineTask: 1}, gpus, "the GPU belongs to the task that runs the engine")
		})
	}
}

// TestOpenAIBaseURLPointsOnlyAtAServerThatRuns: without engine_base_url and
// without a server beside it, the agent is told of no server (and refuses to
// start with engine openai) instead of one on a port where nothing listens.
func TestOpenAIBaseURLPointsOnlyAtAServerThatRuns(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"defaults":        "",
		"sphinx":          "",
		"whispercpp":      "",
		"openai remote":   "http://speaches.internal:8000",
		"openai + server": "http://127.0.0.1:${NOMAD_PORT_engine}",
	}
	for name, vars := range gpuNodeVariants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			agent := evalJob(t, "gpu-node.nomad.hcl", vars).only(t, "job", "ytcaption-gpu-node").only(t, "group", "gpu-node").only(t, "task", "agent")
			require.Equal(t, want[name], agent.env(t)["YTCAPTION_GPU_NODE_OPENAI_BASE_URL"])
		})
	}
}

// TestGPUNodeEngineSettingsReachTheAgent: the models a gpu-node may serve are
// the spec's variables, passed to the flags that take them.
func TestGPUNodeEngineSettingsReachTheAgent(t *testing.T) {
	t.Parallel()
	vars := map[string]cty.Value{
		"engine":                cty.StringVal("whispercpp"),
		"whispercpp_models_dir": cty.StringVal("/usr/local/share/whisper.cpp/models"),
		"whispercpp_model":      cty.StringVal("large-v3"),
		"openai_models":         cty.StringVal("large-v3,base.en"),
		"openai_vad_filter":     cty.True,
	}
	env := evalJob(t, "gpu-node.nomad.hcl", vars).only(t, "job", "ytcaption-gpu-node").only(t, "group", "gpu-node").only(t, "task", "agent").env(t)
	require.Equal(t, "whispercpp", env["YTCAPTION_GPU_NODE_ENGINE"])
	require.Equal(t, "/usr/local/share/whisper.cpp/models", env["YTCAPTION_GPU_NODE_WHISPERCPP_MODELS_DIR"])
	require.Equal(t, "large-v3", env["YTCAPTION_GPU_NODE_WHISPERCPP_MODEL"])
	require.Equal(t, "large-v3,base.en", env["YTCAPTION_GPU_NODE_OPENAI_MODELS"])
	require.Equal(t, "true", env["YTCAPTION_GPU_NODE_OPENAI_VAD_FILTER"])
	readme := readFile(t, "README.md")
	for _, v := range blocks(parse(t, "gpu-node.nomad.hcl"), "variable") {
		require.Contains(t, readme, "`"+v.Labels[0]+"`", "nomad/README.md documents the gpu-node variable %s", v.Labels[0])
	}
}

var (
	withVar  = regexp.MustCompile(`(?s)\{\{-?\s*with\s+nomadVar\s+"([^"]+)"\s*-?\}\}(.*?)\{\{-?\s*end\s*-?\}\}`)
	action   = regexp.MustCompile(`(?s)\{\{(.*?)\}\}`)
	field    = regexp.MustCompile(`(?:^|[\s(|])\.([A-Za-z_][A-Za-z0-9_]*)`)
	varPut   = regexp.MustCompile(`nomad var put (\S+)((?:\s+[a-z0-9_]+=\S*)+)`)
	killTime = func(d string) *regexp.Regexp { return regexp.MustCompile(`(^|[^_])kill_timeout = "` + d + `"`) }
)

// templateKeys: for each Variables path, the keys the specs' templates read.
func templateKeys(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, file := range jobFiles {
		_ = hclsyntax.VisitAll(parse(t, file), func(n hclsyntax.Node) hcl.Diagnostics {
			b, ok := n.(*hclsyntax.Block)
			if !ok || b.Type != "template" {
				return nil
			}
			data := str(t, b.Body, "data")
			for _, m := range withVar.FindAllStringSubmatch(data, -1) {
				for _, a := range action.FindAllStringSubmatch(m[2], -1) {
					for _, f := range field.FindAllStringSubmatch(a[1], -1) {
						out[m[1]] = append(out[m[1]], f[1])
					}
				}
			}
			return nil
		})
	}
	return sorted(out)
}

// readmeKeys: the keys nomad/README.md tells operators to put, per path.
func readmeKeys(t *testing.T) map[string][]string {
	t.Helper()
	text := strings.ReplaceAll(readFile(t, "README.md"), "\\\n", " ")
	out := map[string][]string{}
	for _, m := range varPut.FindAllStringSubmatch(text, -1) {
		for _, item := range strings.Fields(m[2]) {
			key, _, _ := strings.Cut(item, "=")
			out[m[1]] = append(out[m[1]], key)
		}
	}
	return sorted(out)
}

// terraformKeys: the items terraform puts, per path.
func terraformKeys(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range blocks(parse(t, "../terraform/main.tf"), "resource", "nomad_variable") {
		items, ok := r.Body.Attributes["items"].Expr.(*hclsyntax.ObjectConsExpr)
		require.True(t, ok, "nomad_variable %s: items is an object", r.Labels[1])
		path := str(t, r.Body, "path")
		for _, it := range items.Items {
			out[path] = append(out[path], hcl.ExprAsKeyword(it.KeyExpr))
		}
	}
	return sorted(out)
}

// TestTemplateVariablesAreDocumentedAndProvisioned: a key a template reads
// that nobody puts renders empty (core's Nomad token, with ACLs on: no fleet
// view, no drains). The keys each template reads are exactly those
// nomad/README.md's `nomad var put` lines and terraform's nomad_variable put.
func TestTemplateVariablesAreDocumentedAndProvisioned(t *testing.T) {
	t.Parallel()
	want := templateKeys(t)
	require.Contains(t, want, "nomad/jobs/ytcaption-core")
	require.Contains(t, want["nomad/jobs/ytcaption-core"], "nomad_token")
	require.Equal(t, want, readmeKeys(t), "nomad/README.md's `nomad var put` lines")
	require.Equal(t, want, terraformKeys(t), "terraform/main.tf's nomad_variable items")
}

// TestEveryServiceGroupHasAShutdownDelay: without shutdown_delay Nomad signals
// the tasks as it deregisters them, and requests routed from a stale catalog
// land on an instance that is stopping.
func TestEveryServiceGroupHasAShutdownDelay(t *testing.T) {
	t.Parallel()
	for _, g := range groups(t, nil) {
		t.Run(g.group.label, func(t *testing.T) {
			services := len(g.group.all(t, "service"))
			for _, task := range g.group.all(t, "task") {
				services += len(task.all(t, "service"))
			}
			if services == 0 {
				return
			}
			require.GreaterOrEqual(t, g.group.duration(t, "shutdown_delay", 0), 5*time.Second,
				"%s: group %s registers a service and needs a shutdown_delay", g.file, g.group.label)
		})
	}
}

// TestMetricsListenOnTheirOwnPort: /metrics is off the public ports; every
// service group has a metrics port, its binary listens there, and the Consul
// registration says where (service meta metrics_port, which the Prometheus
// scrape configuration in nomad/README.md reads).
func TestMetricsListenOnTheirOwnPort(t *testing.T) {
	t.Parallel()
	envVar := map[string]string{
		"core":     "YTCAPTION_CORE_METRICS_ADDR",
		"edge":     "YTCAPTION_EDGE_METRICS_ADDR",
		"gpu-node": "YTCAPTION_GPU_NODE_METRICS_ADDR",
	}
	for _, g := range groups(t, nil) {
		t.Run(g.group.label, func(t *testing.T) {
			var ports []string
			for _, n := range g.group.all(t, "network") {
				for _, p := range n.all(t, "port") {
					ports = append(ports, p.label)
				}
			}
			require.Contains(t, ports, "metrics", "%s: group %s has a metrics port", g.file, g.group.label)
			task := g.group.only(t, "task", map[string]string{"core": "core", "edge": "edge", "gpu-node": "agent"}[g.group.label])
			require.Equal(t, ":${NOMAD_PORT_metrics}", task.env(t)[envVar[g.group.label]], g.file)
			found := false
			for _, s := range g.group.all(t, "service") {
				for _, m := range s.all(t, "meta") {
					if v, ok := m.get(t, "metrics_port"); ok {
						require.Equal(t, "${NOMAD_PORT_metrics}", v.AsString(), g.file)
						found = true
					}
				}
				if p, _ := s.get(t, "port"); p.AsString() != "metrics" {
					for _, c := range s.all(t, "check") {
						if path, ok := c.get(t, "path"); ok {
							require.NotEqual(t, "/metrics", path.AsString(), "%s: /metrics is not on the %s port", g.file, p.AsString())
						}
					}
				}
			}
			require.True(t, found, "%s: a service of group %s carries meta metrics_port", g.file, g.group.label)
		})
	}
	require.Contains(t, readFile(t, "README.md"), "__meta_consul_service_metadata_metrics_port")
}

// maxDuration is core's --max-duration default: the longest media it
// accepts, which every engine transcribes faster than real time.
func maxDuration(t *testing.T) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`"max-duration",[^\n]*\(default ([0-9hms]+)\)`).FindStringSubmatch(readFile(t, "../core/cmd/ytcaption-core/main.go"))
	require.NotNil(t, m, "core's --max-duration flag names its default")
	d, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	return d
}

// TestOneDrainDeadline: a drain — core's admin API (a deadline of at least
// --max-duration), the autoscaler, `nomad node drain` — stops the gpu-node at
// once (system allocations go last; nothing else runs on a GPU node), its
// first SIGTERM drains it, and kill_timeout is the time the job in hand gets.
// That is --max-duration, the GPU clients' cap allows it, the autoscaler's
// deadline is the same number and it waits for the gpu-node to stop before it
// terminates the host, and both READMEs say so.
func TestOneDrainDeadline(t *testing.T) {
	t.Parallel()
	want := maxDuration(t)
	agent := evalJob(t, "gpu-node.nomad.hcl", nil).only(t, "job", "ytcaption-gpu-node").only(t, "group", "gpu-node").only(t, "task", "agent")
	kill := agent.duration(t, "kill_timeout", defaultKillTimeout)
	require.Equal(t, want, kill, "the gpu-node's kill_timeout is --max-duration")
	limit, source := clientCap(t, "gpu")
	require.GreaterOrEqual(t, limit, kill, "the GPU clients' max_kill_timeout (%s)", source)

	target := scope{body: one(t, one(t, one(t, parse(t, "autoscaler/gpu-cluster.hcl"), "scaling", "gpu_nodes"), "policy"), "target"), ctx: &hcl.EvalContext{}}
	require.Equal(t, want, target.duration(t, "node_drain_deadline", 15*time.Minute), "the autoscaler's node_drain_deadline")
	if v, ok := target.get(t, "node_drain_ignore_system_jobs"); ok {
		require.Equal(t, "false", v.AsString(), "the autoscaler terminates a host only once its gpu-node has stopped")
	}

	human := strings.TrimSuffix(strings.TrimSuffix(want.String(), "0s"), "0m") // 4h0m0s → 4h
	deploying := section(t, readFile(t, "../README.md"), "## Deploying")
	for doc, text := range map[string]string{"README.md's Deploying": deploying, "nomad/README.md": readFile(t, "README.md")} {
		require.Contains(t, text, `max_kill_timeout = "`+human+`"`, doc)
		require.Regexp(t, killTime(human), text, doc)
		require.Contains(t, text, `node_drain_deadline = "`+human+`"`, doc)
		require.Contains(t, text, "shutdown_delay", doc)
		for _, class := range []string{"control", "edge", "gpu"} {
			require.Contains(t, text, "clients/"+class+".hcl", doc)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// section returns a Markdown section from its heading to the next heading of
// the same level.
func section(t *testing.T, text, heading string) string {
	t.Helper()
	i := strings.Index(text, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "no section %q", heading)
	rest := text[i+1+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func sorted(m map[string][]string) map[string][]string {
	for k, v := range m {
		sort.Strings(v)
		m[k] = slices.Compact(v)
	}
	return m
}
