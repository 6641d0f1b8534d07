// Package nomad holds the Nomad job specs and the autoscaler policy; this test
// parses every HCL file (the deploy files of consul/ and terraform/ too) and
// checks the stanzas that matter. Nomad itself cannot run here, so what is
// checked is the documented job-spec format, not a scheduler's verdict.
package nomad

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/stretchr/testify/require"
	"github.com/zclconf/go-cty/cty"
)

func parse(t *testing.T, path string) *hclsyntax.Body {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCLFile(path)
	require.False(t, diags.HasErrors(), "%s: %s", path, diags.Error())
	return f.Body.(*hclsyntax.Body)
}

// blocks returns the blocks of type typ under b, with their first label
// equal to label when one is given.
func blocks(b *hclsyntax.Body, typ string, label ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, blk := range b.Blocks {
		if blk.Type == typ && (len(label) == 0 || (len(blk.Labels) > 0 && blk.Labels[0] == label[0])) {
			out = append(out, blk)
		}
	}
	return out
}

func one(t *testing.T, b *hclsyntax.Body, typ string, label ...string) *hclsyntax.Body {
	t.Helper()
	bs := blocks(b, typ, label...)
	require.Len(t, bs, 1, "one %s %v", typ, label)
	return bs[0].Body
}

// value evaluates a literal attribute (variables are not resolved).
func value(t *testing.T, b *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	a, ok := b.Attributes[name]
	require.True(t, ok, "attribute %s", name)
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	require.False(t, diags.HasErrors(), "%s: %s", name, diags.Error())
	return v
}

func str(t *testing.T, b *hclsyntax.Body, name string) string { return value(t, b, name).AsString() }

// checksReadiness: a service with an HTTP check on /health/ready.
func checksReadiness(t *testing.T, group *hclsyntax.Body, service string) {
	t.Helper()
	for _, s := range blocks(group, "service") {
		if str(t, s.Body, "name") == service {
			check := one(t, s.Body, "check")
			require.Equal(t, "http", str(t, check, "type"))
			require.Equal(t, "/health/ready", str(t, check, "path"))
			require.Equal(t, "consul", str(t, s.Body, "provider"))
			return
		}
	}
	t.Fatalf("no service %s", service)
}

func TestEveryHCLFileParses(t *testing.T) {
	var files []string
	for _, pattern := range []string{"*.hcl", "autoscaler/*.hcl", "clients/*.hcl", "../consul/config/*.hcl", "../consul/acl/*.hcl", "../terraform/*.tf"} {
		m, err := filepath.Glob(pattern)
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.GreaterOrEqual(t, len(files), 12)
	for _, f := range files {
		parse(t, f)
	}
}

func TestCoreJob(t *testing.T) {
	f := parse(t, "core.nomad.hcl")
	job := one(t, f, "job", "ytcaption-core")
	require.Equal(t, "service", str(t, job, "type"))
	update := one(t, job, "update")
	require.Equal(t, int64(1), mustInt(t, value(t, update, "canary")))
	require.True(t, value(t, update, "auto_revert").True())
	group := one(t, job, "group", "core")
	count := one(t, f, "variable", "count")
	require.GreaterOrEqual(t, mustInt(t, value(t, count, "default")), int64(2), "at least two replicas")
	checksReadiness(t, group, "ytcaption-core")
	migrate := one(t, group, "task", "migrate")
	require.Equal(t, "prestart", str(t, one(t, migrate, "lifecycle"), "hook"))
	require.False(t, value(t, one(t, migrate, "lifecycle"), "sidecar").True())
	require.Equal(t, []cty.Value{cty.StringVal("migrate")}, value(t, one(t, migrate, "config"), "args").AsValueSlice())
	require.Equal(t, []cty.Value{cty.StringVal("serve")}, value(t, one(t, one(t, group, "task", "core"), "config"), "args").AsValueSlice())
	requireNomadVars(t, one(t, group, "task", "core"))
}

// TestCoreFetchesItsTools: a prestart task fetches yt-dlp and Deno with
// ytcaption-core tools fetch, from URLs and checksums its template renders
// from a Nomad Variable at the task's own path (job/group/task: the one its
// workload identity reads without an extra ACL policy; an artifact block
// could not, artifacts being fetched before templates render), and core runs
// what it fetched.
func TestCoreFetchesItsTools(t *testing.T) {
	f := parse(t, "core.nomad.hcl")
	group := one(t, one(t, f, "job", "ytcaption-core"), "group", "core")
	tools := one(t, group, "task", "tools")
	lifecycle := one(t, tools, "lifecycle")
	require.Equal(t, "prestart", str(t, lifecycle, "hook"))
	require.False(t, value(t, lifecycle, "sidecar").True(), "it runs to completion before core starts")
	artifacts := blocks(tools, "artifact")
	require.Len(t, artifacts, 1, "no artifact for yt-dlp or Deno")
	require.Equal(t, "${var.release_url}/ytcaption-core", templateText(t, artifacts[0].Body, "source"))
	cfg := one(t, tools, "config")
	require.Equal(t, "local/ytcaption-core", str(t, cfg, "command"))
	args := templateList(t, cfg, "args")
	require.Equal(t, []string{"tools", "fetch", "--dir", "${NOMAD_ALLOC_DIR}/tools"}, args)

	tmpl := one(t, tools, "template")
	require.True(t, value(t, tmpl, "env").True())
	data := str(t, tmpl, "data")
	require.Contains(t, data, `nomadVar "nomad/jobs/ytcaption-core/core/tools"`, "the variable at the task's own path")
	for _, kv := range []string{"YTCAPTION_TOOLS_YT_DLP_URL={{ .yt_dlp_url }}", "YTCAPTION_TOOLS_YT_DLP_SHA256={{ .yt_dlp_sha256 }}",
		"YTCAPTION_TOOLS_DENO_URL={{ .deno_url }}", "YTCAPTION_TOOLS_DENO_SHA256={{ .deno_sha256 }}"} {
		require.Contains(t, data, kv)
	}

	env := one(t, one(t, group, "task", "core"), "env")
	require.Equal(t, "${NOMAD_ALLOC_DIR}/tools/yt-dlp", templateText(t, env, "YTCAPTION_CORE_YT_DLP"))
	require.Equal(t, "deno:${NOMAD_ALLOC_DIR}/tools/deno", templateText(t, env, "YTCAPTION_CORE_JS_RUNTIMES"))
}

// templateText returns a string attribute as written, interpolations
// (${NOMAD_ALLOC_DIR}, which Nomad resolves at run time) and all.
func templateText(t *testing.T, b *hclsyntax.Body, name string) string {
	t.Helper()
	a, ok := b.Attributes[name]
	require.True(t, ok, "attribute %s", name)
	return exprText(t, a.Expr)
}

func templateList(t *testing.T, b *hclsyntax.Body, name string) []string {
	t.Helper()
	a, ok := b.Attributes[name]
	require.True(t, ok, "attribute %s", name)
	tuple, ok := a.Expr.(*hclsyntax.TupleConsExpr)
	require.True(t, ok, "%s is a list", name)
	var out []string
	for _, e := range tuple.Exprs {
		out = append(out, exprText(t, e))
	}
	return out
}

func exprText(t *testing.T, e hclsyntax.Expression) string {
	t.Helper()
	r := e.Range()
	src, err := os.ReadFile(r.Filename)
	require.NoError(t, err)
	text := string(src[r.Start.Byte:r.End.Byte])
	unquoted, err := strconv.Unquote(text)
	require.NoError(t, err, "%s is a plain string", text)
	return unquoted
}

func TestEdgeJob(t *testing.T) {
	f := parse(t, "edge.nomad.hcl")
	job := one(t, f, "job", "ytcaption-edge")
	require.Equal(t, "system", str(t, job, "type"))
	require.Equal(t, "edge", str(t, one(t, job, "constraint"), "value"))
	group := one(t, job, "group", "edge")
	checksReadiness(t, group, "ytcaption-edge")
	requireNomadVars(t, one(t, group, "task", "edge"))
}

func TestGPUNodeJob(t *testing.T) {
	f := parse(t, "gpu-node.nomad.hcl")
	job := one(t, f, "job", "ytcaption-gpu-node")
	require.Equal(t, "system", str(t, job, "type"))
	require.Equal(t, "gpu", str(t, one(t, job, "constraint"), "value"))
	group := one(t, job, "group", "gpu-node")
	agent := one(t, group, "task", "agent")
	// Which task holds the GPU: TestGPUDeviceOnEveryTaskThatUsesTheGPU.
	require.Equal(t, "SIGTERM", str(t, agent, "kill_signal"), "the first SIGTERM drains")
	requireNomadVars(t, agent)
	server := one(t, group, "dynamic", "task")
	require.True(t, value(t, one(t, one(t, server, "content"), "lifecycle"), "sidecar").True(), "the optional engine server runs beside the agent")
}

func TestAutoscalerPolicy(t *testing.T) {
	f := parse(t, "autoscaler/gpu-cluster.hcl")
	scaling := one(t, f, "scaling", "gpu_nodes")
	policy := one(t, scaling, "policy")
	require.NotEmpty(t, str(t, policy, "cooldown"))
	check := one(t, policy, "check", "queue_depth")
	require.Contains(t, str(t, check, "query"), "ytcaption_core_queue_depth")
	strategy := one(t, check, "strategy", "pass-through")
	require.Positive(t, mustInt(t, value(t, strategy, "max_scale_up")))
	require.Positive(t, mustInt(t, value(t, strategy, "max_scale_down")))
	require.Equal(t, "gpu", str(t, one(t, policy, "target"), "node_class"))
}

// requireNomadVars: the task's secrets come from Nomad Variables.
func requireNomadVars(t *testing.T, task *hclsyntax.Body) {
	t.Helper()
	tmpl := one(t, task, "template")
	require.Contains(t, str(t, tmpl, "data"), "nomadVar", "secrets from Nomad Variables")
	require.True(t, value(t, tmpl, "env").True())
}

func mustInt(t *testing.T, v cty.Value) int64 {
	t.Helper()
	i, _ := v.AsBigFloat().Int64()
	return i
}

// TestConsulIntentionsAllowOnlyEdgeAndGPUNodesToCore: core admits the edge
// and the gpu-nodes, and everything else is denied by default.
func TestConsulIntentionsAllowOnlyEdgeAndGPUNodesToCore(t *testing.T) {
	sources := func(path string) (string, map[string]string) {
		f := parse(t, path)
		require.Equal(t, "service-intentions", str(t, f, "Kind"))
		out := map[string]string{}
		for _, src := range value(t, f, "Sources").AsValueSlice() {
			m := src.AsValueMap()
			out[m["Name"].AsString()] = m["Action"].AsString()
		}
		return str(t, f, "Name"), out
	}
	name, core := sources("../consul/config/core.intentions.hcl")
	require.Equal(t, "ytcaption-core", name)
	require.Equal(t, map[string]string{"ytcaption-edge": "allow", "ytcaption-gpu-node": "allow"}, core)
	name, rest := sources("../consul/config/default-deny.intentions.hcl")
	require.Equal(t, "*", name)
	require.Equal(t, map[string]string{"*": "deny"}, rest)
	for _, svc := range []string{"core", "edge", "gpu-node"} {
		f := parse(t, "../consul/config/"+svc+".service-defaults.hcl")
		require.Equal(t, "ytcaption-"+svc, str(t, f, "Name"))
		acl := parse(t, "../consul/acl/"+svc+".hcl")
		require.Equal(t, "write", str(t, one(t, acl, "service", "ytcaption-"+svc), "policy"), "each service writes only its own registration")
	}
}
