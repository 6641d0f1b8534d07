// Command ytcaption-core is ytcaption's control plane.
//
//	ytcaption-core serve     run core (Connect API, fetch stage, dispatch)
//	ytcaption-core migrate   apply database migrations and exit
//	ytcaption-core admin     manage users, API keys and plans
//	ytcaption-core backup    copy the database and every blob, consistently
//	ytcaption-core restore   load such a copy back
//	ytcaption-core doctor    check yt-dlp, its JavaScript runtime, ffmpeg, cookies and proxy
//	ytcaption-core tools     fetch a current yt-dlp and Deno, checksums verified
//
// It links neither the edge nor the gpu-node: the all-in-one stack is the
// separate command ytcaption-dev.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/envflag"
	"github.com/ytcaption/ytcaption/internal/tracing"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		os.Exit(envflag.ExitStatus("ytcaption-core", err, os.Stderr))
	}
}

var errUsage = envflag.ErrUsage

const usage = `ytcaption-core is ytcaption's control plane: jobs, downloads, dispatch to gpu-nodes.

Usage:
  ytcaption-core serve     run core (Connect API on --addr, fetch stage, lease rescue)
  ytcaption-core migrate   apply pending database migrations and exit
  ytcaption-core admin     manage users, API keys and plans in the database
  ytcaption-core backup    copy the database and every blob to a directory, consistently
  ytcaption-core restore   load such a copy back (stop core first)
  ytcaption-core doctor    check yt-dlp (version, age), its JavaScript runtime, ffmpeg, cookies and proxy
  ytcaption-core tools     fetch a current yt-dlp and Deno into a directory, checksums verified

Run "ytcaption-core <command> --help" for a command's flags.
The whole service in one process (a single box, local use) is the command ytcaption-dev.`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], getenv, stdout, stderr)
	case "dev":
		return fmt.Errorf("%w: the all-in-one stack is its own command now: ytcaption-dev (make run)", errUsage)
	case "admin":
		return admin(ctx, args[1:], getenv, stdout, stderr)
	case "backup", "restore":
		return backupCmd(ctx, args[0] == "restore", args[1:], getenv, stdout, stderr)
	case "doctor":
		return doctorCmd(ctx, args[1:], getenv, stdout)
	case "tools":
		return toolsCmd(ctx, args[1:], getenv, stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return nil
	}
	hint := `run "ytcaption-core help" for the commands`
	if near := envflag.Nearest(args[0], []string{"serve", "migrate", "admin", "backup", "restore", "doctor", "tools", "version"}); near != "" {
		hint = fmt.Sprintf("did you mean %q? (%s)", near, hint)
	}
	return fmt.Errorf("%w: unknown command %q; %s", errUsage, args[0], hint)
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	log, err := tracing.NewLogger(format, w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return log, nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg core.Config
	var nodeTokens, logFormat, otlpEndpoint, translatorKeyFile string
	fs.StringVar(&cfg.Addr, "addr", ":8020", "listen address for the Connect API, the dashboard and /health")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", ":8021", "listen address for Prometheus /metrics, apart from the API (empty: none)")
	fs.StringVar(&cfg.PostgresURL, "postgres-url", "postgres://postgres@127.0.0.1:5432/ytcaption?sslmode=disable", "PostgreSQL connection URL")
	s3Flags(fs, &cfg.S3Endpoint, &cfg.S3AccessKey, &cfg.S3SecretKey, &cfg.S3Bucket)
	fs.BoolVar(&cfg.S3UseSSL, "s3-use-ssl", false, "talk to the S3 endpoint over TLS")
	fs.StringVar(&cfg.ServiceToken, "service-token", "", "token the edge presents (required)")
	fs.StringVar(&nodeTokens, "node-tokens", "", "comma-separated tokens gpu-nodes may present (required)")
	fs.BoolVar(&cfg.AllowPrivateURLs, "allow-private-urls", false, "fetch media from loopback/private addresses (never in production)")
	fs.Func("allow-media-from", "address ranges media may come from although the address policy refuses them, comma-separated CIDRs (an internal media server: 10.1.2.0/24)", func(s string) error {
		for _, f := range list(s) {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return fmt.Errorf("%q is not a CIDR range such as 10.1.2.0/24", f)
			}
			cfg.AllowMediaFrom = append(cfg.AllowMediaFrom, p.Masked())
		}
		return nil
	})
	fs.IntVar(&cfg.FetchWorkers, "fetch-workers", 2, "concurrent downloads")
	fs.DurationVar(&cfg.Lease, "lease", 0, "job lease length (default 30s)")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 0, "gpu-node heartbeat interval (default 10s)")
	fs.IntVar(&cfg.MaxAttempts, "max-attempts", 3, "attempts per stage before a job fails")
	fs.IntVar(&cfg.CreateRate, "create-rate", 10, "job creations per second per API key where the user's plan sets none (the edge enforces it)")
	fs.IntVar(&cfg.CreateBurst, "create-burst", 20, "job creations per API key allowed at once, where the plan sets none")
	fs.IntVar(&cfg.ReadRate, "read-rate", 100, "other API calls per second per API key, where the plan sets none")
	fs.IntVar(&cfg.ReadBurst, "read-burst", 200, "other API calls per API key allowed at once, where the plan sets none")
	fs.Int64Var(&cfg.MaxDownloadBytes, "max-download-bytes", 1<<30, "direct downloads larger than this fail with media_too_large")
	fs.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", 4<<30, "resumable (tus) uploads larger than this are refused before their first byte (413 request_too_large)")
	fs.DurationVar(&cfg.UploadExpiry, "upload-expiry", 24*time.Hour, "how long a resumable upload may take, and how long a finished one waits for its job")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 0, "longer media fails with too_long (default 4h)")
	fs.DurationVar(&cfg.AudioRetention, "audio-retention", 7*24*time.Hour, "how long finished jobs keep their downloaded audio (transcripts stay)")
	fs.DurationVar(&cfg.TranscriptRetention, "transcript-retention", 0, "how long finished jobs keep their transcripts (0: forever)")
	fs.DurationVar(&cfg.JobRetention, "job-retention", 0, "how long finished jobs are kept at all (0: forever)")
	fs.DurationVar(&cfg.ChunkLength, "chunk-length", 0, "longer audio is cut at silences into chunks that idle gpu-nodes transcribe in parallel (default 10m; negative: never)")
	toolFlags(fs, &cfg)
	fs.StringVar(&cfg.ConsulAddr, "consul-addr", "", "local Consul agent (host:port) to register with (empty: no Consul)")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "host other machines reach this core at, for Consul (default: the host name)")
	fs.StringVar(&cfg.WorkDir, "work-dir", os.TempDir(), "directory for temp files: each core process works in ytcaption-proc-* there, locked for its life, and removes those of processes that died")
	fs.StringVar(&cfg.NomadAddr, "nomad-addr", "", "Nomad API (http://host:4646) for the admin fleet view and GPU node drains (empty: no Nomad)")
	fs.StringVar(&cfg.NomadToken, "nomad-token", "", "Nomad ACL token with node:read and node:write (optional)")
	fs.StringVar(&cfg.SMTPAddr, "smtp-addr", "", "SMTP relay (host:port) for job emails to users with an address (empty: no email)")
	fs.StringVar(&cfg.SMTPFrom, "smtp-from", "", "sender address of job emails")
	fs.StringVar(&cfg.TranslatorKind, "translator", "", "translator of transcripts: openai (any OpenAI-compatible chat-completions server), libretranslate or deepl (empty: translations are refused with translation_unavailable)")
	fs.StringVar(&cfg.TranslatorURL, "translator-url", "", "the translator's base URL (openai: http://host:8000 of vLLM or Ollama, without /v1; deepl: default by the key's plan)")
	fs.StringVar(&cfg.TranslatorModel, "translator-model", "", "the chat model that translates (openai only), e.g. qwen2.5:7b-instruct")
	fs.StringVar(&translatorKeyFile, "translator-key-file", "", "file holding the translator's API key (DeepL's auth key, LibreTranslate's api_key, the bearer token of an OpenAI-compatible server)")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&otlpEndpoint, "otlp-endpoint", "", "OpenTelemetry collector for traces, OTLP/HTTP (host:4318 or a URL; empty: no tracing)")
	if err := envflag.ParseCommand(fs, "YTCAPTION_CORE", "ytcaption-core serve: run the control plane.", args, getenv, stdout); err != nil {
		return err
	}
	cfg.NodeTokens = list(nodeTokens)
	if cfg.ServiceToken == "" || len(cfg.NodeTokens) == 0 {
		return fmt.Errorf("%w: --service-token and --node-tokens are required", errUsage)
	}
	if translatorKeyFile != "" {
		key, err := os.ReadFile(translatorKeyFile)
		if err != nil {
			return fmt.Errorf("%w: --translator-key-file: %v", errUsage, err)
		}
		cfg.TranslatorKey = strings.TrimSpace(string(key))
	}
	log, err := newLogger(logFormat, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = log
	warnInsecure(ctx, log, cfg)
	tp, stop, err := tracing.Provider(ctx, "ytcaption-core", otlpEndpoint)
	if err != nil {
		return err
	}
	defer stop()
	cfg.TracerProvider = tp
	c, err := core.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Run(ctx)
}

func s3Flags(fs *flag.FlagSet, endpoint, access, secret, bucket *string) {
	fs.StringVar(endpoint, "s3-endpoint", "", "S3/MinIO endpoint host:port")
	fs.StringVar(access, "s3-access-key", "", "S3 access key")
	fs.StringVar(secret, "s3-secret-key", "", "S3 secret key")
	fs.StringVar(bucket, "s3-bucket", "ytcaption", "bucket for audio and artifacts")
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	url := fs.String("postgres-url", "postgres://postgres@127.0.0.1:5432/ytcaption?sslmode=disable", "PostgreSQL connection URL")
	if err := envflag.ParseCommand(fs, "YTCAPTION_CORE", "ytcaption-core migrate: apply pending database migrations and exit.", args, getenv, stdout); err != nil {
		return err
	}
	pool, err := core.Connect(ctx, *url)
	if err != nil {
		return err
	}
	defer pool.Close()
	n, err := migrations.Migrate(ctx, sqldb.FromPool(pool))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migration(s)\n", n)
	return nil
}
