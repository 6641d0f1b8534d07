// Package edge is ytcaption's front door: the public REST API (Fiber, :8000)
// and the same JobService over Connect/gRPC (net/http h2c, :8010), both with
// API-key authentication, per-key rate limits and Idempotency-Key written
// once (internal/gate) and adapted by each door (internal/rest,
// internal/connectapi), in front of core's Connect services; its Prometheus
// metrics on a listener of their own (:8011), never the public ports. It
// never touches core's database or the blob store. The same REST listener
// serves the web app for people (internal/webapp) at /.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/connectapi"
	"github.com/ytcaption/ytcaption/edge/internal/coreclient"
	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/edge/internal/jobcache"
	"github.com/ytcaption/ytcaption/edge/internal/ratelimit"
	"github.com/ytcaption/ytcaption/edge/internal/redisx"
	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/edge/internal/rest"
	"github.com/ytcaption/ytcaption/edge/internal/webapp"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
	"github.com/ytcaption/ytcaption/internal/discovery"
	"github.com/ytcaption/ytcaption/internal/metricsrv"
)

// Config configures an edge.
type Config struct {
	Addr         string // REST listener; default ":8000"
	ConnectAddr  string // Connect/gRPC front door (h2c); default ":8010"
	CoreURL      string // core's Connect base URL
	ServiceToken string // presented to core
	// TracerProvider records the edge's spans — one per request, continuing
	// the client's traceparent — and sends their context to core; nil: none.
	TracerProvider trace.TracerProvider
	// AuthCacheTTL is how long a valid key is trusted without asking core
	// (default 10 s); refused keys are remembered for 2 s.
	AuthCacheTTL time.Duration
	// FinishedJobTTL is how long a job is answered from this edge's memory
	// (default 5 s; negative: never): a finished job always, a running one
	// while core's change feed says it has not changed (package jobcache).
	FinishedJobTTL time.Duration
	MaxBodyBytes   int // default 64 KiB; uploads have their own limit (25 MiB and the form)
	// MetricsAddr is where Run serves GET /metrics; empty: Run serves none
	// (MetricsHandler and ServeMetrics still do).
	MetricsAddr string
	// TrustedProxies may name the client in X-Forwarded-For (the right-most
	// address not itself trusted), and the host and scheme it reached in
	// X-Forwarded-Host and X-Forwarded-Proto; from anyone else those
	// headers are ignored.
	TrustedProxies []netip.Prefix
	// FailedAuthBurst is how many refused API keys one client address
	// (an IPv6 /64) may send at once, FailedAuthPerMinute how fast that
	// allowance refills; defaults 20 and 20. Past it: 429 rate_limited.
	FailedAuthBurst     int
	FailedAuthPerMinute int
	// MaxStreams is how many event streams one API key may hold open at
	// once on this edge when its plan sets none; default 10.
	MaxStreams int
	// RedisURL is where the rate limits live, shared by every edge
	// ("redis://host:port/db"). Empty: each edge limits on its own.
	RedisURL string
	// CORSOrigins may call the API from a browser; empty: no CORS headers.
	CORSOrigins []string
	// ConsulAddr is the local Consul agent ("127.0.0.1:8500"); empty: no
	// Consul. With it the edge registers itself and finds healthy core
	// instances, CoreURL's host serving while Consul knows none.
	ConsulAddr string
	// AdvertiseAddr is the host others reach this edge at; default: the
	// host name.
	AdvertiseAddr string
	Logger        *slog.Logger
	Version       string
}

// Edge is a configured edge server.
type Edge struct {
	cfg      Config
	log      *slog.Logger
	app      *fiber.App   // REST
	front    *http.Server // Connect/gRPC: the same JobService for clients
	reg      *prometheus.Registry
	resolver *discovery.Resolver // nil: no Consul
	rdb      *redis.Client       // nil: no Redis
	jobs     *jobcache.Cache     // jobs answered without core, kept true by core's change feed
	core     coreclient.Clients
}

// New builds the edge.
func New(cfg Config) (*Edge, error) {
	if cfg.CoreURL == "" || cfg.ServiceToken == "" {
		return nil, errors.New("edge: a core URL and a service token are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8000"
	}
	if cfg.ConnectAddr == "" {
		cfg.ConnectAddr = ":8010"
	}
	if cfg.AuthCacheTTL <= 0 {
		cfg.AuthCacheTTL = 10 * time.Second
	}
	if cfg.FinishedJobTTL == 0 {
		cfg.FinishedJobTTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FailedAuthBurst <= 0 {
		cfg.FailedAuthBurst = 20
	}
	if cfg.FailedAuthPerMinute <= 0 {
		cfg.FailedAuthPerMinute = 20
	}
	var resolver *discovery.Resolver
	if cfg.ConsulAddr != "" {
		var err error
		if resolver, err = discovery.CoreResolver(cfg.Logger, cfg.ConsulAddr, cfg.CoreURL); err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
	}
	core := coreclient.New(cfg.CoreURL, cfg.ServiceToken, resolver, cfg.TracerProvider)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rdb, redisBreaker, err := redisx.Open(cfg.RedisURL, reg)
	if err != nil {
		return nil, fmt.Errorf("edge: redis url: %w", err)
	}
	limiter := ratelimit.New(rdb, redisBreaker, reg)
	guard := auth.NewGuard(auth.New(core.Auth, cfg.AuthCacheTTL, 2*time.Second), limiter,
		ratelimit.Limit{Name: "failed_auth", Rate: cfg.FailedAuthPerMinute, Burst: cfg.FailedAuthBurst, Period: time.Minute})
	// One gate for both doors: a key's limits, event streams and
	// idempotency keys are the same over REST and Connect.
	g := gate.New(cfg.Logger, gate.Config{MaxStreams: cfg.MaxStreams}, gate.Deps{
		Guard: guard, Limiter: limiter, Streams: ratelimit.NewStreams(reg), Replays: replay.New(rdb, redisBreaker),
	})
	finished, addrs := jobcache.New(cfg.FinishedJobTTL), clientaddr.New(cfg.TrustedProxies)
	// The web app at / signs people in with the same gate and speaks the
	// same API, its session cookie standing in for the key.
	web := webapp.New(cfg.Logger, webapp.Deps{Gate: g, Redis: rdb, Breaker: redisBreaker, ClientAddr: rest.ClientAddr, Error: rest.Error})
	app := rest.New(cfg.Logger, rest.Config{CoreURL: cfg.CoreURL, MaxBodyBytes: cfg.MaxBodyBytes, CORSOrigins: cfg.CORSOrigins, ClientAddrs: addrs},
		rest.Deps{Core: core, Gate: g, Finished: finished, Registry: reg, TracerProvider: cfg.TracerProvider, Sessions: web})
	web.Mount(app)
	front := connectapi.Server(connectapi.New(connectapi.Config{MaxBodyBytes: cfg.MaxBodyBytes, ClientAddrs: addrs},
		connectapi.Deps{Core: core, Gate: g, Finished: finished, TracerProvider: cfg.TracerProvider}))
	return &Edge{cfg: cfg, log: cfg.Logger, app: app, front: front, reg: reg, resolver: resolver, rdb: rdb, jobs: finished, core: core}, nil
}

// MetricsHandler serves the edge's Prometheus metrics. They are not on the
// public REST or Connect ports: serve this on a listener of its own
// (ServeMetrics, or Config.MetricsAddr through Run).
func (e *Edge) MetricsHandler() http.Handler { return metricsrv.Handler(e.reg) }

// ServeMetrics serves GET /metrics on ln until ctx ends (internal/metricsrv).
func (e *Edge) ServeMetrics(ctx context.Context, ln net.Listener) error {
	if err := metricsrv.Serve(ctx, metricsrv.Server(map[string]http.Handler{"/metrics": e.MetricsHandler()}), ln); err != nil {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// Run listens on the configured addresses and serves until ctx ends.
func (e *Edge) Run(ctx context.Context) (err error) {
	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", e.cfg.Addr, err)
	}
	cln, err := net.Listen("tcp", e.cfg.ConnectAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen %s: %w", e.cfg.ConnectAddr, err)
	}
	if e.cfg.MetricsAddr != "" {
		addr, stop, merr := metricsrv.Start(ctx, e.cfg.MetricsAddr, map[string]http.Handler{"/metrics": e.MetricsHandler()})
		if merr != nil {
			ln.Close()
			cln.Close()
			return merr
		}
		e.log.InfoContext(ctx, "edge metrics serving", "addr", addr)
		defer func() {
			if merr := stop(); err == nil && merr != nil {
				err = fmt.Errorf("serve metrics: %w", merr)
			}
		}()
	}
	return e.Serve(ctx, ln, cln)
}

// Serve serves REST on ln and, unless cln is nil, the Connect/gRPC front door
// on cln, until ctx ends or a listener fails (its error); then it lets
// in-flight requests finish (up to 30 s) and closes both listeners.
func (e *Edge) Serve(ctx context.Context, ln, cln net.Listener) error {
	if e.rdb != nil {
		// Its pool and background goroutines outlive the servers otherwise.
		defer e.rdb.Close()
	}
	// The change feed keeps the edge's memory of jobs true while it serves.
	fctx, stopFollowing := context.WithCancel(ctx)
	following := make(chan struct{})
	go func() { defer close(following); e.jobs.Follow(fctx, e.log, e.core.Edge) }()
	defer func() { stopFollowing(); <-following }()
	errc := make(chan error, 2)
	// fasthttp gives up on its listener at the first accept error but a
	// timeout; this one waits out the passing ones (see patientListener).
	go func() { errc <- e.app.Listener(newPatientListener(ln, e.log)) }()
	if e.resolver != nil {
		go e.resolver.Run(ctx)
		deregister, err := discovery.RegisterListener(ctx, e.cfg.ConsulAddr, "ytcaption-edge", "", e.cfg.AdvertiseAddr, ln, "/health/ready")
		if err != nil {
			e.log.WarnContext(ctx, "register with consul (serving anyway)", "err", err)
		} else {
			defer deregister()
		}
	}
	e.log.InfoContext(ctx, "edge serving", "addr", ln.Addr().String())
	var front *http.Server
	if cln != nil {
		// Connect needs net/http for HTTP/2 (gRPC) and streaming; h2c: no TLS
		// inside the cluster, the load balancer terminates it.
		front = e.front
		go func() {
			if err := front.Serve(cln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		e.log.InfoContext(ctx, "edge Connect front door serving", "addr", cln.Addr().String())
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	// Both servers stop either way: one's listener failing must not leave
	// the other serving, nor its own socket open with nobody accepting.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ferr error
	if front != nil {
		ferr = front.Shutdown(sctx)
	}
	if err := e.app.ShutdownWithContext(sctx); err != nil && serveErr == nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	if ferr != nil {
		return fmt.Errorf("shut down the Connect front door: %w", ferr)
	}
	return <-errc
}
