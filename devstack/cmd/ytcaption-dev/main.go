// Command ytcaption-dev runs all of ytcaption in one process — core, an edge
// and one gpu-node — for a single box and for local use. With no server
// settings it needs no servers: SQLite and files in --data-dir. It is what
// `make run` and `make demo` start.
//
// It is a command of its own so that ytcaption-core, the control plane,
// links neither the edge nor the gpu-node.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ytcaption/ytcaption/devstack"
	"github.com/ytcaption/ytcaption/internal/envflag"
	"github.com/ytcaption/ytcaption/internal/tracing"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const summary = `ytcaption-dev runs ytcaption in one process: core, an edge and one gpu-node.
With no --postgres-url, --s3-endpoint or --redis-url it needs no servers: jobs live in SQLite
and blobs in files under --data-dir, and the edge limits rates in process.
Media URLs on loopback and private addresses are allowed, so local files can be served.

Usage: ytcaption-dev [flags]`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		os.Exit(envflag.ExitStatus("ytcaption-dev", err, os.Stderr))
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ytcaption-dev", flag.ContinueOnError)
	var cfg devstack.Config
	var logFormat, otlpEndpoint string
	dataDir := ".data"
	if d := getenv("XDG_DATA_HOME"); d != "" {
		dataDir = d + "/ytcaption"
	} else if h := getenv("HOME"); h != "" {
		dataDir = h + "/.local/share/ytcaption"
	}
	fs.StringVar(&cfg.DataDir, "data-dir", dataDir, "single-box state: the SQLite database, blobs and temp files")
	fs.StringVar(&cfg.EdgeAddr, "edge-addr", "127.0.0.1:8000", "public REST address")
	fs.StringVar(&cfg.ConnectAddr, "connect-addr", "127.0.0.1:8010", "the edge's Connect/gRPC front door (h2c)")
	fs.StringVar(&cfg.CoreAddr, "core-addr", "127.0.0.1:8020", "core's Connect address")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "127.0.0.1:8001", "Prometheus metrics of core and the edge, at /metrics/core and /metrics/edge (empty: none)")
	fs.StringVar(&cfg.PostgresURL, "postgres-url", "", "PostgreSQL URL, e.g. "+devstack.DefaultPostgresURL+" (the database is created if missing; empty: SQLite in --data-dir)")
	fs.StringVar(&cfg.S3Endpoint, "s3-endpoint", "", "S3/MinIO endpoint host:port (empty: blobs in --data-dir)")
	fs.StringVar(&cfg.S3AccessKey, "s3-access-key", "", "S3 access key")
	fs.StringVar(&cfg.S3SecretKey, "s3-secret-key", "", "S3 secret key")
	fs.StringVar(&cfg.S3Bucket, "s3-bucket", "ytcaption", "bucket for audio and artifacts")
	fs.StringVar(&cfg.APIKey, "api-key", "", "API key for the dev user (generated and printed when empty)")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis for the edge's rate limits and Idempotency-Key replays, e.g. redis://127.0.0.1:6379/0 (empty: in process; unreachable: falls back to in process)")
	fs.StringVar(&cfg.Engine, "engine", "sphinx", "speech engine of the gpu-node: sphinx, openai or whispercpp")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&otlpEndpoint, "otlp-endpoint", "", "OpenTelemetry collector for the three parts' traces, OTLP/HTTP (host:4318 or a URL; empty: no tracing)")
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintln(stdout, version)
		return nil
	}
	if err := envflag.ParseCommand(fs, "YTCAPTION_DEV", summary, args, getenv, stdout); err != nil {
		return err
	}
	log, err := tracing.NewLogger(logFormat, stderr)
	if err != nil {
		return fmt.Errorf("%w: %v", envflag.ErrUsage, err)
	}
	cfg.Logger, cfg.Version = log, version
	tp, stop, err := tracing.Provider(ctx, "ytcaption-dev", otlpEndpoint)
	if err != nil {
		return err
	}
	defer stop()
	cfg.TracerProvider = tp
	return devstack.Run(ctx, cfg, func(s devstack.Stack) {
		fmt.Fprintf(stdout, "ytcaption dev stack is up.\n  REST API:  %s\n  API key:   %s (an admin's)\n  Dashboard: %s/admin/\n", s.EdgeURL, s.APIKey, s.CoreURL)
		if s.CoreMetricsURL != "" {
			fmt.Fprintf(stdout, "  Metrics:   %s %s\n", s.CoreMetricsURL, s.EdgeMetricsURL)
		}
		fmt.Fprintf(stdout, "\nTry:\n  curl -H 'Authorization: Bearer %s' %s/v1/jobs\n\nCtrl-C stops it.\n", s.APIKey, s.EdgeURL)
	})
}
