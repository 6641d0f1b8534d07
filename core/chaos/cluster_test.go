package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgres is a private PostgreSQL cluster the suite may restart at will
// without disturbing other tests on the shared server.
type postgres struct {
	t      *testing.T
	bin    string
	root   string // socket directory and log
	dir    string // data directory
	port   int
	asUser []string // prefix that runs a command as the cluster owner
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startPostgres(t *testing.T) *postgres {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		t.Fatal("chaos: no PostgreSQL server binaries (Debian package postgresql)")
	}
	p := &postgres{t: t, bin: filepath.Dir(matches[len(matches)-1]), port: freePort(t)}
	// initdb refuses to run as root: run the cluster as the postgres user then.
	root, err := os.MkdirTemp("", "ytc-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal("chaos: running as root needs a postgres user to own the cluster")
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
	p.start()
	t.Cleanup(func() { p.run("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop") })
	return p
}

// start starts the server with its output in a log file: a server holding
// run's output pipe would keep run waiting forever.
func (p *postgres) start() {
	p.run("pg_ctl", "-D", p.dir, "-l", filepath.Join(p.root, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.root), "start")
}

func (p *postgres) run(tool string, args ...string) {
	p.t.Helper()
	argv := append(append(append([]string{}, p.asUser...), filepath.Join(p.bin, tool)), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("chaos: %s: %v\n%s", tool, err, out)
	}
}

func (p *postgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// restart stops the server the rude way (as a crash or failover would) and
// starts it again.
func (p *postgres) restart() {
	p.run("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop")
	p.start()
}

func (p *postgres) conn(ctx context.Context) *pgx.Conn {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := pgx.Connect(ctx, p.url())
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("chaos: connect to private postgres: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
