// Package miniosrv starts and stops a real MinIO server process: the dev
// stack's blob store and the tests' S3 peer.
package miniosrv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ytcaption/ytcaption/internal/proc"
)

// Version is the MinIO build the Makefile pins; FindBinary looks for it in the cache.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Config configures a server.
type Config struct {
	Binary               string
	Dir                  string // data directory, created if missing
	Addr                 string // host:port; port 0 picks a free one
	AccessKey, SecretKey string // generated when empty
	Logger               *slog.Logger
}

// Server is a running MinIO.
type Server struct {
	Endpoint             string // host:port
	AccessKey, SecretKey string
	cmd                  *exec.Cmd
	cancel               context.CancelFunc
	done                 chan struct{}
}

// FindBinary locates MinIO: $YTCAPTION_MINIO_BIN, then "minio" on PATH, then
// the cache `make deps` fills.
func FindBinary(getenv func(string) string) (string, error) {
	if p := getenv("YTCAPTION_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	cache := getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(getenv("HOME"), ".cache")
	}
	p := filepath.Join(cache, "ytcaption", "minio-"+Version, "minio")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("no MinIO server binary found: run `make deps` (it builds the pinned version), put `minio` on PATH, or set YTCAPTION_MINIO_BIN")
}

func freeAddr(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start runs `minio server` and waits until it answers its liveness probe and
// accepts its keys.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.AccessKey == "" {
		cfg.AccessKey = "ytc" + randomHex(6)
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = randomHex(16)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("make minio dir: %w", err)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("minio address %q: %w", cfg.Addr, err)
	}
	var lastErr error
	for range 3 { // a picked port can be taken before MinIO binds it (errNotOurs)
		addr := cfg.Addr
		if port == "0" {
			if addr, err = freeAddr(host); err != nil {
				return nil, err
			}
		}
		console, err := freeAddr(host)
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, cfg, addr, console)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, cfg Config, addr, console string) (*Server, error) {
	// The server outlives ctx (which may be a start-up deadline); Stop ends it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cmd := proc.Command(runCtx, 10*time.Second, cfg.Binary, "server", "--quiet", "--address", addr, "--console-address", console, cfg.Dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+cfg.AccessKey, "MINIO_ROOT_PASSWORD="+cfg.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	var out io.Writer = io.Discard
	if cfg.Logger != nil {
		out = logWriter{cfg.Logger}
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start minio %s: %w", cfg.Binary, err)
	}
	s := &Server{Endpoint: addr, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, cmd: cmd, cancel: cancel, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			cancel()
			return nil, fmt.Errorf("minio exited during start-up on %s", addr)
		case <-ctx.Done():
			_ = s.Stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + addr + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				switch err := s.ours(ctx); {
				case err == nil:
					return s, nil
				case errors.Is(err, errNotOurs):
					_ = s.Stop()
					return nil, err
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = s.Stop()
	return nil, fmt.Errorf("minio on %s not live within 60 s", addr)
}

// errNotOurs: the server that answers on the address refuses our keys. The
// port was picked free, but another process (often another test's MinIO)
// bound it first; ours will fail to bind and exit, and until then the
// liveness probe is the other server's.
var errNotOurs = errors.New("another server answers on the address")

// ours checks with a signed request that the server answering is the one
// started with s's keys.
func (s *Server) ours(ctx context.Context) error {
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.ListBuckets(ctx)
	switch minio.ToErrorResponse(err).Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return fmt.Errorf("minio on %s: %w", s.Endpoint, errNotOurs)
	}
	return err
}

// Stop ends the server (SIGTERM, then SIGKILL after a grace) and waits for it.
func (s *Server) Stop() error {
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		return errors.New("minio did not stop within 30 s")
	}
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("minio", "output", string(p))
	return len(p), nil
}
