// Package edge is ytcaption's front door: the public REST API (Fiber, :8000)
// and the same JobService over Connect/gRPC (net/http h2c, :8010), both with
// API-key authentication, per-key rate limits and Idempotency-Key, in front
// of core's Connect services. It never touches Postgres or the blob store.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/coreclient"
	"github.com/ytcaption/ytcaption/edge/internal/jobcache"
	"github.com/ytcaption/ytcaption/edge/internal/ratelimit"
	"github.com/ytcaption/ytcaption/edge/internal/redisx"
	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/edge/internal/rest"
	"github.com/ytcaption/ytcaption/internal/discovery"
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
	// FinishedJobTTL is how long a finished job is answered from this edge's
	// memory (default 5 s; negative: never).
	FinishedJobTTL time.Duration
	MaxBodyBytes   int // default 64 KiB
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
	app      *fiber.App          // REST
	front    http.Handler        // Connect/gRPC: the same JobService for clients
	resolver *discovery.Resolver // nil: no Consul
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
	deps := rest.Deps{
		Core: core, Keys: auth.New(core.Auth, cfg.AuthCacheTTL, 2*time.Second),
		Limiter: limiter, Replays: replay.New(rdb, redisBreaker), Finished: jobcache.New(cfg.FinishedJobTTL), Registry: reg,
		TracerProvider: cfg.TracerProvider,
	}
	app := rest.New(cfg.Logger, rest.Config{CoreURL: cfg.CoreURL, MaxBodyBytes: cfg.MaxBodyBytes, CORSOrigins: cfg.CORSOrigins}, deps)
	mux := http.NewServeMux()
	mux.Handle(rest.NewConnect(deps))
	return &Edge{cfg: cfg, log: cfg.Logger, app: app, front: mux, resolver: resolver}, nil
}

// Run listens on the configured addresses and serves until ctx ends.
func (e *Edge) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", e.cfg.Addr, err)
	}
	cln, err := net.Listen("tcp", e.cfg.ConnectAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen %s: %w", e.cfg.ConnectAddr, err)
	}
	return e.Serve(ctx, ln, cln)
}

// Serve serves REST on ln and, unless cln is nil, the Connect/gRPC front door
// on cln, until ctx ends; then it lets in-flight requests finish (up to 30 s).
func (e *Edge) Serve(ctx context.Context, ln, cln net.Listener) error {
	errc := make(chan error, 2)
	go func() { errc <- e.app.Listener(ln) }()
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
		front = &http.Server{Handler: e.front, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
		front.Protocols.SetHTTP1(true)
		front.Protocols.SetUnencryptedHTTP2(true)
		go func() {
			if err := front.Serve(cln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		e.log.InfoContext(ctx, "edge Connect front door serving", "addr", cln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ferr error
	if front != nil {
		ferr = front.Shutdown(sctx)
	}
	if err := e.app.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if ferr != nil {
		return fmt.Errorf("shut down the Connect front door: %w", ferr)
	}
	return <-errc
}
