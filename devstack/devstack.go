// Package devstack runs all of ytcaption in one process for local use and
// end-to-end tests: core, an edge and one gpu-node agent.
//
// With no server settings it needs no servers: jobs live in an SQLite
// database and blobs in a directory, both in the data directory, and the
// edge limits rates and replays Idempotency-Keys in process. A PostgreSQL
// URL, S3 settings or a Redis URL switch each part to the real server.
//
// It is what `ytcaption-dev` (devstack/cmd/ytcaption-dev) and `make run` start. It allows media URLs on
// loopback and private addresses so that local files can be served.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/edge"
	agent "github.com/ytcaption/ytcaption/gpu-node"
	"github.com/ytcaption/ytcaption/internal/metricsrv"
)

// DefaultPostgresURL is the local server's dev database, for --postgres-url.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/ytcaption?sslmode=disable"

// Config configures the stack. Zero values take the defaults noted.
type Config struct {
	DataDir     string // the SQLite database, blobs and temp files; default ./.data
	EdgeAddr    string // public REST; default 127.0.0.1:8000
	ConnectAddr string // the edge's Connect/gRPC front door; default 127.0.0.1:8010
	CoreAddr    string // core's Connect listener; default 127.0.0.1:8020
	// MetricsAddr serves core's and the edge's metrics, at /metrics/core and
	// /metrics/edge — never on the API ports. Empty: none.
	MetricsAddr string
	PostgresURL string // empty: SQLite in DataDir; a URL's database is created if missing

	// S3 settings; when S3Endpoint is empty blobs are files in DataDir.
	S3Endpoint, S3AccessKey, S3SecretKey, S3Bucket string

	APIKey string // the dev user's key; generated when empty
	// RedisURL holds the edge's rate limits and replay copies; empty keeps
	// them in process.
	RedisURL string
	Engine   string // gpu-node engine; default "sphinx"
	Nodes    int    // how many gpu-nodes; default 1
	// ConsulAddr, when set, has core and the edge register there (as
	// 127.0.0.1) and the edge and gpu-nodes look core up there.
	ConsulAddr string

	// OpenAI configures the gpu-nodes' openai engine (Engine "openai").
	OpenAI agent.OpenAIConfig

	// Knobs tests turn; zero means core's defaults.
	MaxDownloadBytes  int64
	ChunkLength       time.Duration // long audio is cut into chunks of at most this; default 10 min
	CreateRate        int           // per-key job creations/s (burst the same); 0: core's default
	ReadRate          int           // per-key other calls/s (burst the same); 0: core's default
	Lease             time.Duration
	HeartbeatInterval time.Duration
	YtDlpBinary       string
	YtDlpExtractors   string
	AuthCacheTTL      time.Duration // how long the edge trusts a key; default 10 s
	JobCacheTTL       time.Duration // how long the edge answers an unchanged job from memory; default 5 s
	NomadAddr         string        // core's Nomad API for the fleet view and drains; empty: none
	// TracerProvider records the spans of all three (nil: none).
	TracerProvider  trace.TracerProvider
	WebhookSchedule []time.Duration // waits between webhook attempts; default the Standard Webhooks schedule
	// The translator core's translations use (core.Config's Translator*);
	// empty: none.
	TranslatorKind, TranslatorURL, TranslatorKey, TranslatorModel string

	Version string
	Logger  *slog.Logger
}

// Stack describes a running stack.
type Stack struct {
	EdgeURL    string // public REST base URL
	ConnectURL string // the edge's Connect/gRPC front door
	CoreURL    string // core's Connect base URL
	APIKey     string // the dev user's API key
	NodeToken  string // what its gpu-nodes present to core
	WorkDir    string // where the gpu-node keeps audio (tests look for engine processes by it)
	// CoreMetricsURL and EdgeMetricsURL are the Prometheus scrape URLs ("":
	// no metrics listener).
	CoreMetricsURL, EdgeMetricsURL string
}

// Run starts the stack, calls started once it serves, and runs until ctx ends
// or a part of it fails, whose error it returns.
func Run(ctx context.Context, cfg Config, started func(Stack)) error {
	if cfg.DataDir == "" {
		cfg.DataDir = ".data"
	}
	if cfg.ConnectAddr == "" {
		cfg.ConnectAddr = "127.0.0.1:8010"
	}
	if cfg.EdgeAddr == "" {
		cfg.EdgeAddr = "127.0.0.1:8000"
	}
	if cfg.CoreAddr == "" {
		cfg.CoreAddr = "127.0.0.1:8020"
	}
	if cfg.Engine == "" {
		cfg.Engine = "sphinx"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workDir := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return fmt.Errorf("make work dir: %w", err)
	}
	workDir, _ = filepath.Abs(workDir)

	log.InfoContext(ctx, "backends", backends(cfg)...)
	if cfg.PostgresURL != "" {
		if err := ensureDatabase(ctx, cfg.PostgresURL); err != nil {
			return err
		}
	}

	serviceToken, nodeToken := randomToken(), randomToken()
	c, err := core.New(ctx, core.Config{
		PostgresURL: cfg.PostgresURL, DataDir: cfg.DataDir,
		S3Endpoint: cfg.S3Endpoint, S3AccessKey: cfg.S3AccessKey, S3SecretKey: cfg.S3SecretKey, S3Bucket: cfg.S3Bucket,
		ServiceToken: serviceToken, NodeTokens: []string{nodeToken},
		AllowPrivateURLs: true,
		MaxDownloadBytes: cfg.MaxDownloadBytes, Lease: cfg.Lease, HeartbeatInterval: cfg.HeartbeatInterval, ChunkLength: cfg.ChunkLength,
		ConsulAddr: cfg.ConsulAddr, AdvertiseAddr: "127.0.0.1",
		CreateRate: cfg.CreateRate, CreateBurst: cfg.CreateRate, ReadRate: cfg.ReadRate, ReadBurst: cfg.ReadRate,
		YtDlpBinary: cfg.YtDlpBinary, YtDlpExtractors: cfg.YtDlpExtractors, WebhookSchedule: cfg.WebhookSchedule, NomadAddr: cfg.NomadAddr,
		TracerProvider: cfg.TracerProvider,
		TranslatorKind: cfg.TranslatorKind, TranslatorURL: cfg.TranslatorURL, TranslatorKey: cfg.TranslatorKey, TranslatorModel: cfg.TranslatorModel,
		WorkDir: workDir, Logger: log.With("component", "core"),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	key, err := c.EnsureAPIKey(ctx, "dev", true, cfg.APIKey)
	if err != nil {
		return fmt.Errorf("set up dev key: %w", err)
	}

	coreLn, err := net.Listen("tcp", cfg.CoreAddr)
	if err != nil {
		return fmt.Errorf("listen core: %w", err)
	}
	edgeLn, err := net.Listen("tcp", cfg.EdgeAddr)
	if err != nil {
		coreLn.Close()
		return fmt.Errorf("listen edge: %w", err)
	}
	frontLn, err := net.Listen("tcp", cfg.ConnectAddr)
	if err != nil {
		coreLn.Close()
		edgeLn.Close()
		return fmt.Errorf("listen edge Connect front door: %w", err)
	}
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			coreLn.Close()
			edgeLn.Close()
			frontLn.Close()
			return fmt.Errorf("listen metrics: %w", err)
		}
	}
	closeAll := func() {
		coreLn.Close()
		edgeLn.Close()
		frontLn.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
	}
	coreURL := "http://" + coreLn.Addr().String()
	e, err := edge.New(edge.Config{CoreURL: coreURL, ServiceToken: serviceToken, RedisURL: cfg.RedisURL, Version: cfg.Version, Logger: log.With("component", "edge"),
		ConsulAddr: cfg.ConsulAddr, AdvertiseAddr: "127.0.0.1", AuthCacheTTL: cfg.AuthCacheTTL, FinishedJobTTL: cfg.JobCacheTTL, TracerProvider: cfg.TracerProvider})
	if err != nil {
		closeAll()
		return err
	}
	var agents []*agent.Agent
	for i := range max(cfg.Nodes, 1) {
		id := "dev-node"
		if i > 0 {
			id = fmt.Sprintf("dev-node-%d", i+1)
		}
		a, err := agent.New(agent.Config{
			CoreURL: coreURL, NodeToken: nodeToken, NodeID: id, Version: cfg.Version, ConsulAddr: cfg.ConsulAddr,
			WorkDir: workDir, Engine: cfg.Engine, OpenAI: cfg.OpenAI, Logger: log.With("component", "gpu-node", "node", id), TracerProvider: cfg.TracerProvider,
		})
		if err != nil {
			closeAll()
			return err
		}
		agents = append(agents, a)
	}

	// Stop order matters: the agent first (it hands back its job), then the
	// edge, then core.
	coreCtx, stopCore := context.WithCancel(context.WithoutCancel(ctx))
	edgeCtx, stopEdge := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Go(func() { errs <- c.Serve(coreCtx, coreLn) })
	wg.Go(func() { errs <- e.Serve(edgeCtx, edgeLn, frontLn) })
	var coreMetrics, edgeMetrics string
	if metricsLn != nil {
		srv := metricsrv.Server(map[string]http.Handler{"/metrics/core": c.MetricsHandler(), "/metrics/edge": e.MetricsHandler()})
		base := "http://" + metricsLn.Addr().String()
		coreMetrics, edgeMetrics = base+"/metrics/core", base+"/metrics/edge"
		wg.Go(func() {
			if err := metricsrv.Serve(edgeCtx, srv, metricsLn); err != nil {
				errs <- fmt.Errorf("metrics: %w", err)
			}
		})
	}
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	agentDone := make(chan struct{})
	var agentsWG sync.WaitGroup
	for _, a := range agents {
		agentsWG.Go(func() {
			if err := a.Run(agentCtx); err != nil {
				select {
				case errs <- fmt.Errorf("gpu-node: %w", err):
				default:
				}
			}
		})
	}
	go func() { agentsWG.Wait(); close(agentDone) }()

	if started != nil {
		started(Stack{EdgeURL: "http://" + edgeLn.Addr().String(), ConnectURL: "http://" + frontLn.Addr().String(),
			CoreURL: coreURL, CoreMetricsURL: coreMetrics, EdgeMetricsURL: edgeMetrics, APIKey: key, NodeToken: nodeToken, WorkDir: workDir})
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		// A part failed (the edge's listener, say): the whole stack stops
		// and Run returns, so that the process exits and its supervisor
		// restarts it. Waiting on for ctx left a box that answered nothing
		// running for good.
	}
	stopAgents()
	<-agentDone
	stopEdge()
	stopCore()
	wg.Wait()
	close(errs)
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	return runErr
}

// backends says, for the first log line, where each kind of state lives.
func backends(cfg Config) []any {
	database, blobs, limits := "sqlite "+filepath.Join(cfg.DataDir, core.DatabaseFile), "dir "+filepath.Join(cfg.DataDir, core.BlobDir), "in process"
	if cfg.PostgresURL != "" {
		database = "postgres " + redactURL(cfg.PostgresURL)
	}
	if cfg.S3Endpoint != "" {
		blobs = "s3 " + cfg.S3Endpoint
	}
	if cfg.RedisURL != "" {
		limits = "redis " + redactURL(cfg.RedisURL)
	}
	return []any{"data_dir", cfg.DataDir, "database", database, "blobs", blobs, "rate_limits_and_replays", limits}
}

// redactURL drops a URL's password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// ensureDatabase creates the URL's database when it does not exist, so the dev
// stack needs only a running Postgres server.
func ensureDatabase(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return fmt.Errorf("parse postgres url: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		return nil
	}
	admin := *u
	admin.Path = "/postgres"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin.String())
	if err != nil {
		return fmt.Errorf("reach postgres at %s (is it running?): %w", u.Host, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(cctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
