// Command ytcaption-edge serves ytcaption's public REST API in front of core.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ytcaption/ytcaption/edge"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
	"github.com/ytcaption/ytcaption/internal/envflag"
	"github.com/ytcaption/ytcaption/internal/tracing"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		os.Exit(envflag.ExitStatus("ytcaption-edge", err, os.Stderr))
	}
}

var errUsage = envflag.ErrUsage

const summary = `ytcaption-edge serves ytcaption's public REST API (jobs, transcripts, health) and the same
JobService over Connect/gRPC, and forwards authenticated calls to core over Connect. Its Prometheus
metrics are served on --metrics-addr, never on the public ports.

Usage: ytcaption-edge --core-url URL --service-token TOKEN [flags]`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ytcaption-edge", flag.ContinueOnError)
	var cfg edge.Config
	var logFormat, corsOrigins, otlpEndpoint, trustedProxies string
	fs.StringVar(&cfg.Addr, "addr", ":8000", "REST listen address")
	fs.StringVar(&cfg.ConnectAddr, "connect-addr", ":8010", "Connect/gRPC front door listen address (h2c)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", ":8011", "serve Prometheus metrics (GET /metrics) on this address, apart from the public ports (empty: off)")
	fs.StringVar(&cfg.CoreURL, "core-url", "http://127.0.0.1:8020", "core's Connect URL")
	fs.StringVar(&cfg.ServiceToken, "service-token", "", "token the edge presents to core (required)")
	fs.DurationVar(&cfg.AuthCacheTTL, "auth-cache-ttl", 0, "how long a valid API key is trusted without asking core (default 10s)")
	fs.DurationVar(&cfg.FinishedJobTTL, "finished-job-ttl", 0, "how long a job is answered from the edge's memory without asking core — a finished one, or a running one core's change feed says has not changed (default 5s; negative: never)")
	fs.IntVar(&cfg.MaxBodyBytes, "max-body-bytes", 64<<10, "largest request body accepted, as sent and as inflated (uploads: 25 MiB and the form)")
	fs.StringVar(&trustedProxies, "trusted-proxies", "", "comma-separated CIDR prefixes or addresses of proxies whose X-Forwarded-For names the client (the right-most untrusted hop) and whose X-Forwarded-Host and X-Forwarded-Proto name the host and scheme the client reached; from anyone else these headers are ignored (empty: use the TCP peer and the request's own Host)")
	fs.IntVar(&cfg.FailedAuthBurst, "failed-auth-burst", 20, "refused API keys one client address (an IPv6 /64) may send at once before 429 rate_limited")
	fs.IntVar(&cfg.FailedAuthPerMinute, "failed-auth-per-minute", 20, "how many refused API keys a client address's allowance regains a minute")
	fs.IntVar(&cfg.MaxStreams, "max-streams", 10, "event streams (SSE, WatchJob) one API key may hold open at once on this edge, unless its plan sets max_streams")
	fs.StringVar(&cfg.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis holding the per-key rate limits and per-address refused-key allowances, shared by every edge (empty: limit in process; while unreachable: in process, counted)")
	fs.StringVar(&corsOrigins, "cors-origins", "", "comma-separated browser origins allowed to call the API, or * (empty: no CORS)")
	fs.StringVar(&cfg.ConsulAddr, "consul-addr", "", "local Consul agent (host:port): register, and find healthy core instances, --core-url serving while Consul knows none (empty: no Consul)")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "host other machines reach this edge at, for Consul (default: the host name)")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&otlpEndpoint, "otlp-endpoint", "", "OpenTelemetry collector for traces, OTLP/HTTP (host:4318 or a URL; empty: no tracing)")
	if err := envflag.ParseCommand(fs, "YTCAPTION_EDGE", summary, args, getenv, stdout); err != nil {
		return err
	}
	for _, o := range strings.Split(corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
	var err error
	if cfg.TrustedProxies, err = clientaddr.ParsePrefixes(trustedProxies); err != nil {
		return fmt.Errorf("%w: --trusted-proxies: %v", errUsage, err)
	}
	if cfg.ServiceToken == "" {
		return fmt.Errorf("%w: --service-token (or YTCAPTION_EDGE_SERVICE_TOKEN) is required", errUsage)
	}
	log, err := tracing.NewLogger(logFormat, stderr)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg.Logger = log
	tp, stop, err := tracing.Provider(ctx, "ytcaption-edge", otlpEndpoint)
	if err != nil {
		return err
	}
	defer stop()
	cfg.TracerProvider = tp
	cfg.Version = version
	e, err := edge.New(cfg)
	if err != nil {
		return err
	}
	return e.Run(ctx)
}
