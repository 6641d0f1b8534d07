// Package core is ytcaption's control plane: it owns jobs (PostgreSQL, or
// SQLite on a single box), audio (the blob store), the download stage,
// dispatch to gpu-nodes with fenced leases, and the Connect services the edge
// and the agents call.
//
// New connects and migrates; Serve runs everything until its context ends.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/core/internal/api"
	"github.com/ytcaption/ytcaption/core/internal/batch"
	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/dashboard"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/doctor"
	"github.com/ytcaption/ytcaption/core/internal/fetch"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/leader"
	"github.com/ytcaption/ytcaption/core/internal/media"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/nomad"
	"github.com/ytcaption/ytcaption/core/internal/notify"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/retention"
	"github.com/ytcaption/ytcaption/core/internal/safehttp"
	"github.com/ytcaption/ytcaption/core/internal/settings"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/translate"
	"github.com/ytcaption/ytcaption/core/internal/uploads"
	"github.com/ytcaption/ytcaption/core/internal/workdir"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/discovery"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/jobjson"
	"github.com/ytcaption/ytcaption/internal/metricsrv"
)

// Config configures core. Zero values take the documented defaults.
type Config struct {
	Addr string // Connect and health listener; default ":8020"
	// MetricsAddr is where Run serves /metrics, on a listener of its own so
	// the API port never shows them; empty: no metrics listener (a caller
	// of Serve mounts MetricsHandler where it likes).
	MetricsAddr string
	// RequestReadTimeout is how long a client may take to send a request,
	// headers and body; default 1 min. Responses (long-polls, WatchJob
	// streams) are not bound by it.
	RequestReadTimeout time.Duration
	// PostgresURL is the job database. Empty: the single-box SQLite
	// database in DataDir.
	PostgresURL string
	// DataDir holds the single-box state: the SQLite database when no
	// PostgresURL is given, the blobs when no S3Endpoint is.
	DataDir string
	// BlobURL is the base URL under which gpu-nodes reach core's blob
	// handler (single-box blobs only); default http:// and the listener's
	// address.
	BlobURL string

	S3Endpoint  string // host:port
	S3AccessKey string
	S3SecretKey string
	S3Bucket    string // default "ytcaption"
	S3UseSSL    bool

	ServiceToken string   // the edge presents this
	NodeTokens   []string // gpu-nodes present one of these

	// AllowPrivateURLs lets jobs fetch media from loopback and private
	// addresses. Only the dev stack and tests turn it on.
	AllowPrivateURLs bool
	// AllowMediaFrom are address ranges media may come from although the
	// address policy refuses them (an internal media server): for direct
	// downloads and every connection yt-dlp opens.
	AllowMediaFrom []netip.Prefix

	FetchWorkers      int           // default 2
	Lease             time.Duration // default 30 s
	HeartbeatInterval time.Duration // default 10 s
	MaxAttempts       int           // per stage; default 3
	MaxDownloadBytes  int64         // default 1 GiB
	// MaxUploadBytes bounds a resumable (tus) upload, checked before its
	// first byte; default uploads.DefaultMaxSize (4 GiB). UploadExpiry is
	// how long an upload lives; default 24 h.
	MaxUploadBytes int64
	UploadExpiry   time.Duration
	MaxDuration    time.Duration // default 4 h
	// ChunkLength is the longest audio one engine run gets; longer audio is
	// cut at silences into chunks transcribed in parallel. Default 10 min.
	ChunkLength time.Duration
	// How long finished jobs keep their audio (default 7 days), transcripts
	// and records (0: forever). The leader's sweeper deletes what expired.
	AudioRetention, TranscriptRetention, JobRetention time.Duration

	// Rate limits of users whose plan sets none (the edge enforces them per
	// API key, GCRA): job creation 10/s with bursts of 20, other calls 100/s
	// with bursts of 200. `ytcaption-core admin set-plan` sets a plan's own.
	CreateRate, CreateBurst int
	ReadRate, ReadBurst     int

	YtDlpBinary string // default "yt-dlp"
	FFmpeg      string // default "ffmpeg"
	FFprobe     string // default "ffprobe"
	// YtDlpExtractors is yt-dlp's allowlist of extractors (--ies); default
	// YouTube and the sites mediaurl recognises. YtDlpGeneric adds the
	// generic extractor: any web page becomes a job source.
	YtDlpExtractors string
	YtDlpGeneric    bool
	// YtDlpCookies is a Netscape cookies file for YouTube (copied per job:
	// yt-dlp rewrites it); YtDlpProxy an outbound proxy URL. Both optional,
	// both entries of the outbound pool beside YtDlpProxies, the proxies in
	// YtDlpProxiesFile (re-read when it changes) and the database's cookie
	// files, which downloads take in turn.
	YtDlpCookies, YtDlpProxy string
	YtDlpProxies             []string
	YtDlpProxiesFile         string
	// JSRuntimes are the JavaScript runtimes a current yt-dlp may use to
	// solve YouTube's challenges ("deno", "node:/usr/bin/node"; default
	// "deno"); YtDlpRemoteComponents lets it fetch the EJS scripts it runs
	// there ("ejs:github") when it came without them. See ytdlp.Config.
	JSRuntimes, YtDlpRemoteComponents string
	// YtDlpMaxAge is how old a yt-dlp release may be before core calls it
	// stale (on /health/ready; the alert compares the metric
	// ytcaption_core_ytdlp_max_age_seconds); default 60 days.
	YtDlpMaxAge time.Duration
	WorkDir     string // temp files, in a directory per process (workdir); default os.TempDir()
	InstanceID  string // lease owner name; default hostname-pid
	// ConsulAddr is the local Consul agent; with it core registers itself
	// (checked on /health/ready) as AdvertiseAddr (default: the host name).
	ConsulAddr, AdvertiseAddr string

	// TracerProvider records core's spans (see internal/tracing); nil: none.
	TracerProvider trace.TracerProvider

	// NomadAddr (http://host:4646) and NomadToken, when set, add Nomad's node
	// status to the admin fleet view and let admins drain GPU nodes.
	NomadAddr, NomadToken string

	// SMTPAddr (host:port) and SMTPFrom let core email users whose account
	// has an address when their jobs end. Optional.
	SMTPAddr, SMTPFrom string
	// WebhookSchedule is the wait before each webhook retry; default the
	// Standard Webhooks schedule (eight attempts over about 27 hours).
	WebhookSchedule []time.Duration

	// The translator of transcripts (docs/translation.md): TranslatorKind
	// "openai" (any OpenAI-compatible chat-completions server, with
	// TranslatorModel), "libretranslate" or "deepl"; empty: translations
	// are refused with translation_unavailable. TranslatorURL is the
	// server's base URL (DeepL's default by its key's plan); TranslatorKey
	// its API key, if any.
	TranslatorKind, TranslatorURL, TranslatorKey, TranslatorModel string

	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = ":8020"
	}
	if c.YtDlpBinary == "" {
		c.YtDlpBinary = "yt-dlp"
	}
	if c.YtDlpMaxAge <= 0 {
		c.YtDlpMaxAge = doctor.DefaultMaxAge
	}
	if c.S3Bucket == "" {
		c.S3Bucket = "ytcaption"
	}
	for _, d := range []struct {
		v   *int
		def int
	}{{&c.CreateRate, 10}, {&c.CreateBurst, 20}, {&c.ReadRate, 100}, {&c.ReadBurst, 200}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.RequestReadTimeout <= 0 {
		c.RequestReadTimeout = time.Minute
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 4 * time.Hour
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.WorkDir == "" {
		c.WorkDir = os.TempDir()
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Core is a running control plane.
type Core struct {
	cfg Config
	log *slog.Logger
	db  sqldb.DB
	bus *dispatch.Bus // the store announces every committed job change on it
	// creations announces new jobs to other replicas, a burst in one
	// notification (its Run publishes them).
	creations *dispatch.Creations
	blobDir   *blob.Dir // single-box blobs, served by core; nil on S3
	store     *store.Store
	blobs     blob.Store
	reg       *prometheus.Registry
	breakers  struct{ youtube, blob *breaker.Breaker }
	routes    *outbound.Pool // yt-dlp's proxies and cookie files
	// translator translates transcripts; nil: none configured.
	translator translate.Translator

	toolsMu sync.Mutex
	tools   doctor.Report // the startup checks; its YtDlp refreshed by watchYtDlp

	cacheHits prometheus.Counter
	stages    *prometheus.HistogramVec
}

// New opens the database (PostgreSQL, or SQLite in DataDir) and the blob
// store (S3, or a directory in DataDir) and applies pending migrations (under
// an advisory lock, so replicas starting together migrate once).
func New(ctx context.Context, cfg Config) (*Core, error) {
	cfg.defaults()
	if cfg.ServiceToken == "" || len(cfg.NodeTokens) == 0 {
		return nil, errors.New("a service token and at least one node token are required")
	}
	c := &Core{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry()}
	var err error
	if c.translator, err = translate.New(translate.Config{Kind: cfg.TranslatorKind, URL: cfg.TranslatorURL, Key: cfg.TranslatorKey, Model: cfg.TranslatorModel}); err != nil {
		return nil, err
	}
	if err := c.openDatabase(ctx); err != nil {
		return nil, err
	}
	if err := c.openBlobs(ctx); err != nil {
		c.Close()
		return nil, err
	}
	c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.breakers.youtube = breaker.New(c.reg, "youtube", breaker.Config{Counts: ytdlp.CountsAgainstYouTube})
	c.breakers.blob = breaker.New(c.reg, "blob", breaker.Config{Counts: func(err error) bool { return !errors.Is(err, job.ErrNotFound) }})
	// The outbound pool checks the cookies file and the proxies: a typo
	// there stops core here, not every download later.
	if c.routes, err = outbound.New(ctx, c.log, cfg.outbound(), c.store, c.reg); err != nil {
		c.Close()
		return nil, err
	}
	// A missing or stale tool fails some jobs, not the rest: say so and go on.
	dc := cfg.doctor()
	dc.Pool = c.routes
	c.tools = doctor.Run(ctx, dc)
	for _, ch := range c.tools.Checks {
		if ch.Status != doctor.OK {
			c.log.WarnContext(ctx, "tool check", "check", ch.Name, "status", string(ch.Status), "detail", ch.Detail, "fix", ch.Fix)
		}
	}
	c.log.InfoContext(ctx, "tools", "yt_dlp", c.tools.YtDlp.Version, "js_runtime", c.tools.YtDlp.JSRuntime, "ffmpeg", c.tools.FFmpeg)
	c.cacheHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ytcaption_core_transcript_cache_hits_total",
		Help: "Jobs finished with an earlier job's transcript of the same media and options: no download, no GPU.",
	})
	c.stages = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ytcaption_core_job_stage_seconds",
		Help:    "How long jobs spend in each stage: download, wait (ready until a gpu-node takes it), transcribe.",
		Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"stage"})
	c.reg.MustRegister(toolsCollector{c}, c.cacheHits, c.stages, queueDepth(c.store), slotCount(c.store))
	return c, nil
}

// Where single-box state lives in the data directory.
const (
	DatabaseFile = "ytcaption.db"
	BlobDir      = "blobs"
	// BackupLockFile is what a backup of the running box (another process:
	// ytcaption-core backup --data-dir) and the box's blob deletions lock,
	// so that no blob the backup's database copy names is deleted before
	// the backup has copied it.
	BackupLockFile = "backup.lock"
)

// openDatabase opens PostgreSQL, or without a URL the SQLite database in
// the data directory, and migrates it.
func (c *Core) openDatabase(ctx context.Context) error {
	if c.cfg.PostgresURL != "" {
		pool, err := Connect(ctx, c.cfg.PostgresURL)
		if err != nil {
			return err
		}
		c.db = sqldb.FromPool(pool)
	} else {
		if c.cfg.DataDir == "" {
			return errors.New("no PostgreSQL URL and no data directory for the single-box database")
		}
		if err := os.MkdirAll(c.cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("make data directory: %w", err)
		}
		db, err := sqldb.OpenSQLite(filepath.Join(c.cfg.DataDir, DatabaseFile))
		if err != nil {
			return fmt.Errorf("open sqlite: %w", err)
		}
		c.db = db
	}
	c.bus = dispatch.NewBus(c.log, c.db, c.cfg.InstanceID)
	c.creations = dispatch.NewCreations(c.bus)
	opts := []store.Option{store.OnChange(c.creations.Announce)}
	if c.cfg.PostgresURL == "" {
		opts = append(opts, store.BackupLockFile(filepath.Join(c.cfg.DataDir, BackupLockFile)))
	}
	c.store = store.New(c.db, opts...)
	n, err := migrations.Migrate(ctx, c.db)
	if err != nil {
		c.db.Close()
		return fmt.Errorf("migrate: %w", err)
	}
	if n > 0 {
		c.log.InfoContext(ctx, "migrations applied", "count", n)
	}
	return nil
}

// openBlobs opens the S3 bucket, or without an endpoint the blob directory
// in the data directory, which core itself serves to gpu-nodes.
func (c *Core) openBlobs(ctx context.Context) error {
	if c.cfg.S3Endpoint == "" {
		if c.cfg.DataDir == "" {
			return errors.New("no S3 endpoint and no data directory for single-box blobs")
		}
		d, err := blob.OpenDir(filepath.Join(c.cfg.DataDir, BlobDir), c.cfg.BlobURL)
		if err != nil {
			return fmt.Errorf("open blob directory: %w", err)
		}
		c.blobs, c.blobDir = d, d
		return nil
	}
	s3, err := blob.New(ctx, blob.Config{
		Endpoint: c.cfg.S3Endpoint, AccessKey: c.cfg.S3AccessKey, SecretKey: c.cfg.S3SecretKey,
		Bucket: c.cfg.S3Bucket, UseSSL: c.cfg.S3UseSSL,
	})
	if err != nil {
		return fmt.Errorf("open blob store: %w", err)
	}
	c.blobs = s3
	return nil
}

// Connect opens and pings a Postgres pool.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default (the CPU count, at least 4) starves a control plane
		// whose calls are short and many: gpu-nodes, the edge, the fetch stage.
		cfg.MaxConns = int32(max(16, 4*runtime.NumCPU()))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reach postgres: %w", err)
	}
	return pool, nil
}

// Close releases the database.
func (c *Core) Close() { c.db.Close() }

// EnsureAPIKey makes sure a user with the given name and role exists and owns
// key; with key empty it creates a new random key. It returns the key.
func (c *Core) EnsureAPIKey(ctx context.Context, user string, admin bool, key string) (string, error) {
	role := store.RoleUser
	if admin {
		role = store.RoleAdmin
	}
	u, err := c.store.EnsureUser(ctx, user, role)
	if err != nil {
		return "", err
	}
	if key == "" {
		return c.store.CreateAPIKey(ctx, u.ID)
	}
	return key, c.store.AddAPIKey(ctx, u.ID, key)
}

// Run listens on the configured addresses and serves until ctx ends.
func (c *Core) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", c.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.cfg.Addr, err)
	}
	if c.cfg.MetricsAddr != "" {
		addr, stop, err := metricsrv.Start(ctx, c.cfg.MetricsAddr, map[string]http.Handler{"/metrics": c.MetricsHandler()})
		if err != nil {
			ln.Close()
			return err
		}
		c.log.InfoContext(ctx, "metrics serving", "addr", addr)
		defer func() {
			if err := stop(); err != nil {
				c.log.ErrorContext(ctx, "metrics listener stopped", "err", err)
			}
		}()
	}
	return c.Serve(ctx, ln)
}

// MetricsHandler serves core's Prometheus metrics (Run serves it at
// GET /metrics on MetricsAddr).
func (c *Core) MetricsHandler() http.Handler { return metricsrv.Handler(c.reg) }

// Serve runs the Connect services, the fetch stage and the lease rescuer until
// ctx ends, then shuts down: held long-polls answer at once, downloads in
// flight are handed back, and in-flight calls get up to 30 s to finish.
func (c *Core) Serve(ctx context.Context, ln net.Listener) error {
	bus := c.bus
	stopping := make(chan struct{})
	// Every temp file of this process is made in a directory of its own,
	// which the next process to start removes if this one dies without
	// doing so (kill -9 mid-download: found by the chaos suite).
	wd, swept, err := workdir.Claim(c.cfg.WorkDir)
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer wd.Release()
	if swept > 0 {
		c.log.InfoContext(ctx, "removed the work directories of core processes that died", "directories", swept)
	}

	notifier := notify.New(c.log, c.store, notify.Config{
		AllowPrivate: c.cfg.AllowPrivateURLs, Schedule: c.cfg.WebhookSchedule, SMTPAddr: c.cfg.SMTPAddr, SMTPFrom: c.cfg.SMTPFrom,
	}, func(j job.Job) ([]byte, error) { return json.Marshal(jobjson.From(api.JobToProto(j))) }, c.reg)
	breakers := func() []*breaker.Breaker {
		return append([]*breaker.Breaker{c.breakers.youtube, c.breakers.blob}, notifier.Breakers.All()...)
	}

	base := settings.Settings{CreateRate: c.cfg.CreateRate, CreateBurst: c.cfg.CreateBurst, ReadRate: c.cfg.ReadRate,
		ReadBurst: c.cfg.ReadBurst, MaxAttempts: c.cfg.MaxAttempts}
	dynamic := settings.Static(base)
	if c.cfg.ConsulAddr != "" {
		var err error
		if dynamic, err = settings.Watch(ctx, c.log, c.cfg.ConsulAddr, base); err != nil {
			return err
		}
	}
	var fleet *nomad.Fleet
	if c.cfg.NomadAddr != "" {
		var err error
		if fleet, err = nomad.New(c.cfg.NomadAddr, c.cfg.NomadToken); err != nil {
			return err
		}
	}

	// One yt-dlp for the download stage and ListCaptions. The version found
	// at startup decides the JavaScript options; watchYtDlp says when a
	// replaced binary needs a restart.
	policy := egress.Policy{AllowPrivate: c.cfg.AllowPrivateURLs, Allow: c.cfg.AllowMediaFrom}
	yt := ytdlp.New(ytdlp.Config{Binary: c.cfg.YtDlpBinary, Extractors: c.cfg.YtDlpExtractors, Generic: c.cfg.YtDlpGeneric,
		MaxDuration: c.cfg.MaxDuration, Policy: policy,
		Version: c.toolReport().YtDlp.Version, JSRuntimes: c.cfg.JSRuntimes, RemoteComponents: c.cfg.YtDlpRemoteComponents})
	// Translations run on every replica, leased like downloads.
	var translations *translate.Worker
	if c.translator != nil {
		translations = translate.NewWorker(c.log, translate.WorkerConfig{Owner: c.cfg.InstanceID, MaxAttempts: c.cfg.MaxAttempts,
			SiteCaptions: c.siteCaptions(yt, wd.Path)}, c.store, c.translator, c.reg)
	}
	mux := http.NewServeMux()
	admin := api.Register(mux, api.Config{
		ServiceToken: c.cfg.ServiceToken, NodeTokens: c.cfg.NodeTokens, AllowPrivateURLs: c.cfg.AllowPrivateURLs, AllowMediaFrom: c.cfg.AllowMediaFrom, Instance: c.cfg.InstanceID,
		Lease: c.cfg.Lease, HeartbeatInterval: c.cfg.HeartbeatInterval, MaxDuration: c.cfg.MaxDuration,
		PresignTTL: 15 * time.Minute, PollFallback: time.Second, WatchPoll: watchFallback, WorkDir: wd.Path,
	}, api.Deps{Log: c.log, Store: c.store, Blobs: c.blobs, Bus: bus, Stopping: stopping, Metrics: c.reg, Stages: c.stages, Breakers: breakers, Nomad: fleet,
		TracerProvider: c.cfg.TracerProvider, Settings: dynamic, YtDlp: yt, YouTube: c.breakers.youtube, Outbound: c.routes, Translations: translations})
	// Resumable uploads are staged in the blob store, so any replica takes
	// any request; a PATCH spools its current part (≤ 8 MiB) under the work
	// directory first. See docs/uploads.md.
	ups, uerr := uploads.New(c.log, uploads.Config{Dir: filepath.Join(wd.Path, "uploads"),
		MaxSize: c.cfg.MaxUploadBytes, Expiry: c.cfg.UploadExpiry, ServiceToken: c.cfg.ServiceToken}, c.store, c.blobs)
	if uerr != nil {
		return uerr
	}
	ups.Register(mux)
	dashboard.New(c.log, c.store, admin).Register(mux)
	c.health(mux)
	if c.blobDir != nil {
		c.blobDir.DefaultBaseURL("http://" + ln.Addr().String())
		mux.Handle("GET "+blob.DirPath, c.blobDir)
	}

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // Connect streaming and gRPC clients without TLS
	srv := &http.Server{
		Handler:   mux,
		Protocols: protocols,
		// A client gets 10 s for its headers, 64 KiB of them, and a minute
		// for the whole request. ReadTimeout covers reading the request only:
		// on HTTP/1.1 the deadline is cleared once the body has been read,
		// on h2c it is a per-stream timer on the body. So long-polls and
		// WatchJob streams outlive it, while a client trickling a body is
		// cut off (TestServeCutsSlowRequestsButNotLongPolls).
		ReadHeaderTimeout: min(10*time.Second, c.cfg.RequestReadTimeout),
		ReadTimeout:       c.cfg.RequestReadTimeout,
		MaxHeaderBytes:    64 << 10,
		// Longer than the clients' idle timeout (Go's default transport:
		// 90 s), so a client never reuses a connection the server is closing.
		IdleTimeout: 2 * time.Minute,
		// No WriteTimeout: it would cut long-polls and WatchJob streams.
		ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
	}

	stageCtx, stopStage := context.WithCancel(context.WithoutCancel(ctx))
	stage := fetch.New(c.log, fetch.Config{
		Workers: c.cfg.FetchWorkers, Owner: c.cfg.InstanceID, Lease: c.cfg.Lease,
		MaxDownloadBytes: c.cfg.MaxDownloadBytes, MaxDuration: c.cfg.MaxDuration, WorkDir: wd.Path, ChunkLength: c.cfg.ChunkLength,
	}, fetch.Deps{
		Store: c.store, Blobs: c.blobs,
		YtDlp: yt,
		Media: media.New(media.Config{FFmpeg: c.cfg.FFmpeg, FFprobe: c.cfg.FFprobe}),
		HTTP:  safehttp.NewClient(safehttp.Config{Policy: policy}),
		Bus:   bus, Routes: c.routes, YouTube: c.breakers.youtube, Blob: c.breakers.blob, CacheHits: c.cacheHits, Stages: c.stages,
	})

	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	})
	wg.Go(func() { _ = stage.Run(stageCtx) })
	// Batches are enumerated like downloads: on every replica, leased (four
	// job leases: a listing takes up to three).
	wg.Go(func() {
		batch.New(c.log, batch.Config{Owner: c.cfg.InstanceID, WorkDir: wd.Path, Policy: policy,
			Lease: 4 * c.cfg.Lease, ListTimeout: 3 * c.cfg.Lease},
			batch.Deps{Store: c.store, YtDlp: yt, Routes: c.routes, YouTube: c.breakers.youtube}).Run(stageCtx)
	})
	wg.Go(func() { notifier.Run(stageCtx) })
	if translations != nil {
		wg.Go(func() { translations.Run(stageCtx) })
	}
	wg.Go(func() {
		// One replica rescues and sweeps; the others stand by to take over
		// (a single box leads at once: its lock is in-process).
		sweeper := retention.New(c.log, retention.Config{
			Audio: c.cfg.AudioRetention, Transcripts: c.cfg.TranscriptRetention, Jobs: c.cfg.JobRetention, TempDir: c.cfg.WorkDir,
		}, c.store, c.blobs, c.reg)
		duty := func(ctx context.Context) {
			var lw sync.WaitGroup
			lw.Go(func() { c.rescue(ctx) })
			lw.Go(func() { sweeper.Run(ctx) })
			lw.Go(func() { ups.Run(ctx) })
			lw.Wait()
		}
		leader.Run(stageCtx, c.log, c.db, leader.Config{Key: rescueLockKey}, duty)
	})
	wg.Go(func() { bus.Listen(stageCtx) })
	wg.Go(func() { c.creations.Run(stageCtx) })
	wg.Go(func() { c.watchYtDlp(stageCtx) })
	if c.cfg.ConsulAddr != "" {
		// Registered by its instance id, which names its leases too.
		if deregister, err := discovery.RegisterListener(ctx, c.cfg.ConsulAddr, discovery.CoreService, "ytcaption-core-"+c.cfg.InstanceID,
			c.cfg.AdvertiseAddr, ln, "/health/ready"); err != nil {
			c.log.WarnContext(ctx, "register with consul (serving anyway)", "err", err)
		} else {
			defer deregister()
		}
	}
	c.log.InfoContext(ctx, "core serving", "addr", ln.Addr().String(), "instance", c.cfg.InstanceID)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	c.log.InfoContext(ctx, "core shutting down")
	close(stopping)
	stopStage()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("shut down http: %w", serr)
	}
	wg.Wait()
	return err
}

// siteCaptions fetches a video's captions in a language with yt-dlp, as
// the download stage fetches captions: through its proxies and cookie
// files, and YouTube's circuit breaker.
func (c *Core) siteCaptions(yt *ytdlp.Downloader, workDir string) translate.SiteCaptions {
	return func(ctx context.Context, url, lang string) ([]job.Segment, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		dir, err := os.MkdirTemp(workDir, "ytcaption-tlang-")
		if err != nil {
			return nil, false, fmt.Errorf("make temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		var (
			caps  ytdlp.Captions
			found bool
		)
		err = c.routes.Do(ctx, dir, func(proxy, cookies, dir string) error {
			return c.breakers.youtube.Do(func() (err error) {
				caps, found, err = yt.Via(ytdlp.Route{Proxy: proxy, CookiesFile: cookies}).FetchCaptions(ctx, dir, url, lang, true)
				return err
			})
		})
		return caps.Segments, found, err
	}
}

// watchFallback is how often a WatchJob stream re-reads its job without a
// wake-up from the bus. Every change a watcher sees wakes it (in this
// process, or by NOTIFY from another replica), so this only covers a lost
// notification: a listener reconnecting, a replica dying between commit
// and notify.
const watchFallback = 20 * time.Second

// rescueLockKey is the advisory lock of the rescuer's leader election ("ytcresc").
const rescueLockKey = 0x79746372657363

// rescue requeues jobs whose lease expired (a node or core instance died) and
// stitches chunked jobs a crash left unstitched; the store's reported changes
// wake the stages that take them and their watchers.
func (c *Core) rescue(ctx context.Context) {
	every := c.cfg.Lease / 3
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every/2 + rand.N(every/2+1)):
		}
		if _, err := c.store.FinishStitchable(ctx); err != nil && ctx.Err() == nil {
			c.log.WarnContext(ctx, "stitch finished chunks", "err", err)
		}
		rescued, err := c.store.RescueExpired(ctx, 100)
		if err != nil {
			if ctx.Err() == nil {
				c.log.WarnContext(ctx, "rescue expired leases", "err", err)
			}
			continue
		}
		if len(rescued) > 0 {
			c.log.InfoContext(ctx, "expired leases rescued", "count", len(rescued))
		}
	}
}

// storeGauge is a gauge by one label that reads the store at each scrape:
// read returns each label's value.
type storeGauge struct {
	desc *prometheus.Desc
	read func(context.Context) (map[string]float64, error)
}

func (g storeGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g storeGauge) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	values, err := g.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(g.desc, err)
		return
	}
	for label, v := range values {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, label)
	}
}

// queueDepth counts unfinished jobs by state at each scrape; the partial
// indexes on queued, ready and leased jobs keep it cheap.
func queueDepth(st *store.Store) storeGauge {
	return storeGauge{desc: prometheus.NewDesc("ytcaption_core_queue_depth",
		"Jobs (chunks of long audio included) waiting or running, by state, when scraped: the GPU autoscaler's signal.", []string{"state"}, nil),
		read: func(ctx context.Context) (map[string]float64, error) {
			counts, err := st.CountUnfinished(ctx)
			if err != nil {
				return nil, err
			}
			out := map[string]float64{}
			for _, s := range []job.Status{job.StatusQueued, job.StatusDownloading, job.StatusReady, job.StatusTranscribing} {
				out[string(s)] = float64(counts[s])
			}
			return out, nil
		}}
}

// slotCount adds up the fleet's slots at each scrape (ytcaption-gpu-node
// --slots): how much of it is in use, beside the queue depth.
func slotCount(st *store.Store) storeGauge {
	return storeGauge{desc: prometheus.NewDesc("ytcaption_core_gpu_node_slots",
		"Slots (jobs transcribed at once) of the gpu-nodes seen in the last 10 minutes, total and busy at their last recorded poll.", []string{"state"}, nil),
		read: func(ctx context.Context) (map[string]float64, error) {
			n, err := st.CountSlots(ctx, 10*time.Minute)
			return map[string]float64{"total": float64(n.Total), "busy": float64(n.Busy)}, err
		}}
}

// health serves liveness and readiness (the database and the blob store
// answer). Metrics are not here: see MetricsHandler.
func (c *Core) health(mux *http.ServeMux) {
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := c.db.Ping(ctx); err != nil {
			c.log.WarnContext(ctx, "not ready", "dependency", "database", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"the database is unreachable"}}`))
			return
		}
		if err := c.blobs.Ping(ctx); err != nil {
			c.log.WarnContext(ctx, "not ready", "dependency", "blob", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"the blob store is unreachable"}}`))
			return
		}
		// A stale yt-dlp is reported, not a reason to take core out of
		// service: direct downloads and uploads still work. "yt_dlp" stays
		// the bare version for the readers that predate "tools".
		rep := c.toolReport()
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "yt_dlp": rep.YtDlp.Version, "tools": rep.Tools(time.Now()),
			"outbound": c.routes.Summary()})
	})
}

// doctor is what the tool checks look at: the programs and files core runs
// with cfg.
func (cfg Config) doctor() doctor.Config {
	return doctor.Config{YtDlp: cfg.YtDlpBinary, JSRuntimes: cfg.JSRuntimes, RemoteComponents: cfg.YtDlpRemoteComponents,
		MaxAge: cfg.YtDlpMaxAge, Cookies: cfg.YtDlpCookies, FFmpeg: cfg.FFmpeg, FFprobe: cfg.FFprobe}
}

// outbound is the download stage's pool of proxies and cookie files:
// --yt-dlp-proxy first, then the list and the file's.
func (cfg Config) outbound() outbound.Config {
	proxies := cfg.YtDlpProxies
	if cfg.YtDlpProxy != "" {
		proxies = append([]string{cfg.YtDlpProxy}, proxies...)
	}
	return outbound.Config{Proxies: proxies, ProxiesFile: cfg.YtDlpProxiesFile, CookiesFile: cfg.YtDlpCookies}
}

// Doctor runs the checks New runs at startup on the tools cfg names, without
// starting core: `ytcaption-core doctor`. It sees the proxies and the cookies
// file, not the database's cookie files nor the rests of a running core (the
// admin API's /v1/admin/outbound shows those).
func Doctor(ctx context.Context, cfg Config) (doctor.Report, error) {
	cfg.defaults()
	pool, err := outbound.New(ctx, slog.New(slog.DiscardHandler), cfg.outbound(), nil, nil)
	if err != nil {
		return doctor.Report{}, err
	}
	dc := cfg.doctor()
	dc.Pool = pool
	return doctor.Run(ctx, dc), nil
}

func (c *Core) toolReport() doctor.Report {
	c.toolsMu.Lock()
	defer c.toolsMu.Unlock()
	return c.tools
}

// ytDlpRecheck is how often core asks yt-dlp its version again: an operator
// may replace the binary under a running core, and the age grows anyway
// (the metric carries the release date, so that needs no re-check).
const ytDlpRecheck = time.Hour

// watchYtDlp re-checks yt-dlp and its JavaScript runtime every hour or so
// (a few program starts) until ctx ends, so /health/ready and the metrics
// show the yt-dlp that downloads now run.
func (c *Core) watchYtDlp(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(ytDlpRecheck - ytDlpRecheck/10 + rand.N(ytDlpRecheck/5)):
		}
		y, checks := doctor.CheckYtDlp(ctx, c.cfg.doctor())
		if ctx.Err() != nil {
			return
		}
		c.toolsMu.Lock()
		before := c.tools.YtDlp
		c.tools.YtDlp = y
		c.toolsMu.Unlock()
		if y.Version == before.Version && y.JSRuntime == before.JSRuntime {
			continue
		}
		c.log.InfoContext(ctx, "yt-dlp changed", "version", y.Version, "was", before.Version, "js_runtime", y.JSRuntime)
		if ytdlp.KnowsJSRuntimes(y.Version) != ytdlp.KnowsJSRuntimes(before.Version) {
			// The downloader chose its options for the version it started with.
			c.log.WarnContext(ctx, "restart core: yt-dlp changed whether it takes JavaScript runtimes", "version", y.Version)
		}
		for _, ch := range checks {
			if ch.Status != doctor.OK {
				c.log.WarnContext(ctx, "tool check", "check", ch.Name, "status", string(ch.Status), "detail", ch.Detail, "fix", ch.Fix)
			}
		}
	}
}

// toolsCollector exports what core knows of yt-dlp at each scrape. Its
// release date and the configured maximum age are two gauges, so the alert
// (time() - release > max age) follows an operator's --yt-dlp-max-age.
type toolsCollector struct{ c *Core }

var (
	ytDlpInfoDesc = prometheus.NewDesc("ytcaption_core_ytdlp_info",
		"The yt-dlp version core runs (\"\" when it did not answer) and the JavaScript runtime it found (\"\": none); always 1.",
		[]string{"version", "js_runtime"}, nil)
	ytDlpReleaseDesc = prometheus.NewDesc("ytcaption_core_ytdlp_release_timestamp_seconds",
		"When the yt-dlp core runs was released (the date its version names); absent when the version names no date.", nil, nil)
	ytDlpMaxAgeDesc = prometheus.NewDesc("ytcaption_core_ytdlp_max_age_seconds",
		"How old a yt-dlp release may be before it counts as stale (--yt-dlp-max-age).", nil, nil)
)

func (t toolsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ytDlpInfoDesc
	ch <- ytDlpReleaseDesc
	ch <- ytDlpMaxAgeDesc
}

func (t toolsCollector) Collect(ch chan<- prometheus.Metric) {
	y := t.c.toolReport().YtDlp
	ch <- prometheus.MustNewConstMetric(ytDlpInfoDesc, prometheus.GaugeValue, 1, y.Version, y.JSRuntime)
	if !y.Released.IsZero() {
		ch <- prometheus.MustNewConstMetric(ytDlpReleaseDesc, prometheus.GaugeValue, float64(y.Released.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(ytDlpMaxAgeDesc, prometheus.GaugeValue, t.c.cfg.YtDlpMaxAge.Seconds())
}
