package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ytcaption/ytcaption/internal/miniosrv"
)

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
