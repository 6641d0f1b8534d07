// Package stacktest runs ytcaption's real binaries for the suites that test
// the stack from outside (core/chaos, core/soak): it builds them, starts,
// signals and restarts them as processes, gives them a private PostgreSQL
// cluster a suite may stop or move at will without disturbing other tests on
// the shared server, and a stand-in OpenAI-compatible engine.
package stacktest

import (
	"context"
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

	"github.com/jackc/pgx/v5"
)

// FreePort returns a TCP port free on 127.0.0.1 now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Build compiles core, the edge and the gpu-node from this module into a
// temporary directory, which it returns.
func Build(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./core/cmd/ytcaption-core", "./edge/cmd/ytcaption-edge", "./gpu-node/cmd/ytcaption-gpu-node")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	return dir
}

// Process is one real binary a suite starts, signals and restarts; its
// output goes to LOGDIR/NAME.log, whose tail is shown when the test fails.
type Process struct {
	Name    string
	Metrics string // host:port of its GET /metrics, when the suite gave it one
	t       testing.TB
	argv    []string
	log     *os.File
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exited  error
}

// NewProcess prepares argv; Start runs it. It is killed when the test ends.
func NewProcess(t testing.TB, logDir, name string, argv ...string) *Process {
	t.Helper()
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, Name: name, argv: argv, log: f}
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL)
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Log is the process's log file, for a suite's own marks in it.
func (p *Process) Log() *os.File { return p.log }

// Start runs the process (again, after Stop).
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd, p.done, p.exited = cmd, make(chan struct{}), nil
	go func(done chan struct{}) {
		err := cmd.Wait()
		p.mu.Lock()
		if p.cmd == cmd {
			p.exited = fmt.Errorf("%s exited: %v", p.Name, err)
		}
		p.mu.Unlock()
		close(done)
	}(p.done)
}

// Pid is the running process's id.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Exited says why the process ended by itself, or nil while it runs or
// after the suite stopped it.
func (p *Process) Exited() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Signal sends sig to the running process.
func (p *Process) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Stop signals the process and waits for it to exit (SIGKILL after 30 s).
func (p *Process) Stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil // an exit the suite asked for is not Exited's news
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot handle SIGTERM
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// FakeEngine stands in for an OpenAI-compatible transcription server: it
// answers verbose_json after a delay, like a GPU busy on the audio.
func FakeEngine(delay time.Duration) *httptest.Server {
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

// Postgres is a private PostgreSQL cluster.
type Postgres struct {
	t      testing.TB
	bin    string
	root   string // socket directory and log
	dir    string // data directory
	opts   string // server options
	port   int
	spare  int      // the address a failover moves the server to
	asUser []string // prefix that runs a command as the cluster owner
}

// StartPostgres initialises and starts a cluster from Debian's server
// binaries; options are added to the server's command line (e.g.
// "-c max_connections=200"). It is stopped when the test ends.
func StartPostgres(t testing.TB, options ...string) *Postgres {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		t.Fatal("stacktest: no PostgreSQL server binaries (Debian package postgresql)")
	}
	p := &Postgres{t: t, bin: filepath.Dir(matches[len(matches)-1]), port: FreePort(t), spare: FreePort(t),
		opts: strings.Join(options, " ")}
	root, err := os.MkdirTemp("", "ytc-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	// initdb refuses to run as root: run the cluster as the postgres user then.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal("stacktest: running as root needs a postgres user to own the cluster")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	p.root, p.dir = root, filepath.Join(root, "data")
	p.run("initdb", "-D", p.dir, "-A", "trust", "-U", "postgres", "--no-sync")
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start starts the server with its output in a log file: a server holding
// run's output pipe would keep run waiting forever.
func (p *Postgres) Start() {
	p.run("pg_ctl", "-D", p.dir, "-l", filepath.Join(p.root, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off %s", p.port, p.root, p.opts), "start")
}

// Stop stops the server the rude way, as a crash would.
func (p *Postgres) Stop() {
	if _, err := os.Stat(filepath.Join(p.dir, "postmaster.pid")); err == nil {
		p.run("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop")
	}
}

// Restart stops the server the rude way and starts it again.
func (p *Postgres) Restart() {
	p.Stop()
	p.Start()
}

// Failover stops the server and starts it on the other address, as a
// standby promoted elsewhere would take over.
func (p *Postgres) Failover() {
	p.Stop()
	p.port, p.spare = p.spare, p.port
	p.Start()
}

func (p *Postgres) run(tool string, args ...string) {
	p.t.Helper()
	argv := append(append(append([]string{}, p.asUser...), filepath.Join(p.bin, tool)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.root // the cluster's owner may not read the test's directory
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("stacktest: %s: %v\n%s", tool, err, out)
	}
}

// URL is the server's connection URL where it is now.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// FailoverURL names both addresses the server may be at, as a client of a
// primary with a standby does: pgx tries them in order.
func (p *Postgres) FailoverURL() string {
	a, b := min(p.port, p.spare), max(p.port, p.spare)
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", a, b)
}

// Conn connects, retrying for 30 s while the server comes back.
func (p *Postgres) Conn(ctx context.Context) *pgx.Conn {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := pgx.Connect(ctx, p.URL())
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("stacktest: connect to private postgres: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitReady waits up to a minute for base's /health/ready to answer 200.
func WaitReady(t testing.TB, base, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stacktest: %s did not become ready", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
