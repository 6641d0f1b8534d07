package soak

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The stack the soak runs is the chaos suite's (core/chaos): the real
// binaries on a private PostgreSQL cluster. A test package cannot import
// another's test files, so the few helpers are repeated here.

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPostgres starts a private PostgreSQL cluster, so a soak of an hour
// measures nothing but its own load on it.
func startPostgres(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		t.Fatal("soak: no PostgreSQL server binaries (Debian package postgresql)")
	}
	bin, port := filepath.Dir(matches[len(matches)-1]), freePort(t)
	root, err := os.MkdirTemp("", "ytc-soak-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	var asUser []string
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "soak: running as root needs a postgres user to own the cluster")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chmod(root, 0o755))
		require.NoError(t, os.Chown(root, uid, gid))
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(tool string, args ...string) {
		t.Helper()
		argv := append(append(append([]string{}, asUser...), filepath.Join(bin, tool)), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		require.NoError(t, err, "soak: %s\n%s", tool, out)
	}
	dir := filepath.Join(root, "data")
	run("initdb", "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync")
	// The server's output goes to a file: a server holding run's pipe would
	// keep run waiting forever.
	run("pg_ctl", "-D", dir, "-l", filepath.Join(root, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", port, root), "start")
	t.Cleanup(func() { run("pg_ctl", "-D", dir, "-m", "immediate", "-w", "stop") })
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

// build compiles the three binaries once, from this module.
func build(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./core/cmd/ytcaption-core", "./edge/cmd/ytcaption-edge", "./gpu-node/cmd/ytcaption-gpu-node")
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	return dir
}

// process is one real binary of the stack, with the address of its metrics.
type process struct {
	name    string
	metrics string // host:port of GET /metrics
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	exited  error
}

func startProcess(t *testing.T, logDir, name, metrics string, argv ...string) *process {
	t.Helper()
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	require.NoError(t, err)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &process{name: name, metrics: metrics, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exited = fmt.Errorf("%s exited: %v", name, err)
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			s := string(b)
			if len(s) > 3000 {
				s = s[len(s)-3000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, s)
		}
	})
	return p
}

// gone says why the process exited, or nil while it runs.
func (p *process) gone() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// fakeEngine stands in for an OpenAI-compatible transcription server: it
// answers verbose_json after a delay, like a GPU busy on the audio.
func fakeEngine(delay time.Duration) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"language":"en","duration":2.99,"text":"he was not an ill disposed young man",
			"segments":[{"id":0,"start":0.2,"end":1.3,"text":"he was not","compression_ratio":1.1},
			            {"id":1,"start":1.3,"end":2.8,"text":"an ill disposed young man","compression_ratio":1.2}],
			"words":[{"word":"he","start":0.2,"end":0.4},{"word":"man","start":2.3,"end":2.8}]}`))
	}))
}
