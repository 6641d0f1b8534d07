package security

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/bombtest"
	"github.com/ytcaption/ytcaption/internal/miniosrv"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/pgtest"
	"github.com/ytcaption/ytcaption/internal/redistest"
)

// bins holds the three binaries, built once for the package.
var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ytcaption-security-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./core/cmd/ytcaption-core", "./edge/cmd/ytcaption-edge", "./gpu-node/cmd/ytcaption-gpu-node")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the binaries: %v\n%s", err, b)
		os.Exit(1)
	}
	bins = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is one running binary.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string // the file its output goes to
	done chan struct{}
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	out, err := os.Create(p.log)
	require.NoError(t, err)
	t.Cleanup(func() { out.Close() })
	p.cmd = exec.Command(filepath.Join(bins, name), args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			s := string(b)
			t.Logf("--- %s log (tail) ---\n%s", name, s[max(0, len(s)-4000):])
		}
	})
	return p
}

// exited reports whether the process has died (the OOM killer, a panic).
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// memory reads the process's resident set now and at its peak (VmRSS and
// VmHWM), in bytes.
func (p *process) memory(t *testing.T) (rss, peak int64) {
	t.Helper()
	return bombtest.Memory(t, p.cmd.Process.Pid)
}

// options shape a stack.
type options struct {
	noNode    bool     // no gpu-node: ready jobs stay ready
	coreArgs  []string // extra flags for ytcaption-core serve
	edgeArgs  []string // extra flags for ytcaption-edge
	nodeArgs  []string // extra flags for ytcaption-gpu-node
	maxLength string   // --max-duration of core; default 4h
}

// stack is the production topology on loopback: core serve on PostgreSQL
// and MinIO with private URLs refused, an edge on Redis, one sphinx
// gpu-node, and two users with API keys (alice a user, root an admin).
type stack struct {
	t                          *testing.T
	core, edge, node           *process
	coreURL, edgeURL, frontURL string
	coreMetrics, edgeMetrics   string
	nodeMetrics                string
	pgURL                      string
	minio                      *miniosrv.Server
	key, adminKey              string
	serviceToken, nodeToken    string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func startStack(t *testing.T, o options) *stack {
	t.Helper()
	s := &stack{t: t, pgURL: pgtest.URL(t), minio: miniotest.Start(t), serviceToken: "security-service-token-0123456789",
		nodeToken: "security-node-token-0123456789"}
	rds := redistest.Start(t)
	s.key = s.createUser("alice", "user")
	s.adminKey = s.createUser("root", "admin")

	coreAddr, coreMetrics := freeAddr(t), freeAddr(t)
	edgeAddr, frontAddr, edgeMetrics, nodeMetrics := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	s.coreURL, s.edgeURL, s.frontURL = "http://"+coreAddr, "http://"+edgeAddr, "http://"+frontAddr
	s.coreMetrics, s.edgeMetrics, s.nodeMetrics = "http://"+coreMetrics+"/metrics", "http://"+edgeMetrics+"/metrics", "http://"+nodeMetrics+"/metrics"
	maxDuration := o.maxLength
	if maxDuration == "" {
		maxDuration = "4h"
	}
	s.core = start(t, "ytcaption-core", append([]string{"serve", "--addr", coreAddr, "--metrics-addr", coreMetrics,
		"--postgres-url", s.pgURL, "--s3-endpoint", s.minio.Endpoint, "--s3-access-key", s.minio.AccessKey,
		"--s3-secret-key", s.minio.SecretKey, "--service-token", s.serviceToken, "--node-tokens", s.nodeToken,
		"--max-duration", maxDuration, "--work-dir", t.TempDir(), "--log-format", "text",
		"--create-rate", "1000", "--create-burst", "1000"}, o.coreArgs...)...)
	s.edge = start(t, "ytcaption-edge", append([]string{"--addr", edgeAddr, "--connect-addr", frontAddr, "--metrics-addr", edgeMetrics,
		"--core-url", s.coreURL, "--service-token", s.serviceToken, "--redis-url", rds.URL(), "--log-format", "text"}, o.edgeArgs...)...)
	if !o.noNode {
		s.node = start(t, "ytcaption-gpu-node", append([]string{"--core-url", s.coreURL, "--node-token", s.nodeToken,
			"--node-id", "security-node", "--engine", "sphinx", "--work-dir", t.TempDir(), "--metrics-addr", nodeMetrics,
			"--log-format", "text"}, o.nodeArgs...)...)
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.edgeURL + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "the stack did not become ready")
	if s.node != nil {
		require.Eventually(t, func() bool {
			resp, err := http.Get(s.nodeMetrics)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 30*time.Second, 100*time.Millisecond, "the gpu-node did not start")
	}
	return s
}

// admin runs `ytcaption-core admin` on the stack's database.
func (s *stack) admin(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(bins, "ytcaption-core"), append([]string{"admin"}, append(args, "--postgres-url", s.pgURL)...)...)
	out, err := cmd.Output()
	var stderr []byte
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	require.NoError(s.t, err, "admin %v: %s", args, stderr)
	return strings.TrimSpace(string(out))
}

func (s *stack) createUser(name, role string) string {
	s.t.Helper()
	s.admin("create-user", "--name", name, "--role", role)
	return s.admin("create-key", "--user", name)
}

// reply is an HTTP answer, its body read and (when JSON) decoded.
type reply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r reply) code() string {
	e, _ := r.json["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// call sends a request with an optional API key and JSON body.
func call(t *testing.T, method, url, key string, body any, header ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err, "%s %s", req.Method, req.URL)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, body: b}
	_ = json.Unmarshal(b, &r.json)
	return r
}

// waitJob polls a job until it ends and returns it.
func (s *stack) waitJob(key, id string, within time.Duration) map[string]any {
	s.t.Helper()
	var j map[string]any
	require.Eventually(s.t, func() bool {
		r := call(s.t, http.MethodGet, s.edgeURL+"/v1/jobs/"+id, key, nil)
		j = r.json
		st, _ := j["status"].(string)
		return r.status == http.StatusOK && (st == "succeeded" || st == "failed" || st == "cancelled")
	}, within, 200*time.Millisecond, "job %s did not end: %v", id, j)
	return j
}

func errorCode(j map[string]any) string {
	e, _ := j["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// metric sums the samples of a metrics page whose line starts with prefix
// (a name, or a name and the start of its labels).
func metric(t *testing.T, url, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var sum float64
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, line)
		sum += v
	}
	return sum
}
