package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ytcaption/ytcaption/internal/miniosrv"
)

// postgres is a private PostgreSQL cluster the suite may restart at will
// without disturbing other tests on the shared server.
type postgres struct {
	t      *testing.T
	bin    string
	root   string // socket directory and log
	dir    string // data directory
	port   int
	spare  int      // the address a failover moves the server to
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
	p := &postgres{t: t, bin: filepath.Dir(matches[len(matches)-1]), port: freePort(t), spare: freePort(t)}
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

// failoverURL names both addresses the server may be at, as a client of a
// primary with a standby does: pgx tries them in order.
func (p *postgres) failoverURL() string {
	a, b := min(p.port, p.spare), max(p.port, p.spare)
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", a, b)
}

// stop stops the server the rude way; start brings it back.
func (p *postgres) stop() { p.run("pg_ctl", "-D", p.dir, "-m", "immediate", "-w", "stop") }

// failover stops the server and starts it on the other address, as a
// standby promoted elsewhere would take over.
func (p *postgres) failover() {
	p.stop()
	p.port, p.spare = p.spare, p.port
	p.start()
}

// restart stops the server the rude way (as a crash or failover would) and
// starts it again.
func (p *postgres) restart() {
	p.stop()
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

// blobStore is a MinIO the suite stops, starts and pauses, on one address
// and data directory throughout.
type blobStore struct {
	t   *testing.T
	cfg miniosrv.Config
	srv *miniosrv.Server
}

func startBlobStore(t *testing.T) *blobStore {
	t.Helper()
	bin, err := miniosrv.FindBinary(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	b := &blobStore{t: t, cfg: miniosrv.Config{Binary: bin, Dir: t.TempDir()}}
	b.start()
	b.cfg.Addr, b.cfg.AccessKey, b.cfg.SecretKey = b.srv.Endpoint, b.srv.AccessKey, b.srv.SecretKey
	t.Cleanup(func() { b.cont(); _ = b.srv.Stop() })
	return b
}

func (b *blobStore) start() {
	b.t.Helper()
	srv, err := miniosrv.Start(context.Background(), b.cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	b.srv = srv
}

func (b *blobStore) stop()  { _ = b.srv.Stop() }
func (b *blobStore) pause() { _ = syscall.Kill(b.srv.Pid(), syscall.SIGSTOP) }
func (b *blobStore) cont()  { _ = syscall.Kill(b.srv.Pid(), syscall.SIGCONT) }

// smallDisk mounts a tmpfs of size bytes, so filling it really returns
// ENOSPC to whoever writes there. It needs root (CI runs as root); elsewhere
// the suite says so and leaves the disk-full fault out.
func smallDisk(t *testing.T, size int64) (dir string, ok bool) {
	t.Helper()
	dir = t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0777", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Logf("chaos: no disk-full fault: mounting a tmpfs failed (%v: %s)", err, out)
		return dir, false
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir, true
}

// fill writes a ballast file until the disk at dir is full; the returned
// func frees it.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("chaos: fill %s: %v", dir, err)
			}
			break
		}
	}
	f.Close()
	return func() { os.Remove(path) }
}
