// Package discovery is ytcaption's use of Consul: each binary registers
// itself with a health check when Consul is configured and deregisters on
// shutdown, and the edge and gpu-nodes find healthy core instances through
// blocking health queries — falling back to a static address whenever Consul
// has none to offer or cannot be reached, so a Consul outage never stops the
// traffic by itself.
package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ytcaption/ytcaption/internal/backoff"
)

// Client opens a Consul client for addr ("127.0.0.1:8500"); the ACL token
// comes from CONSUL_HTTP_TOKEN as Consul's tools read it.
func Client(addr string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	return api.NewClient(cfg)
}

// Service is what a binary registers.
type Service struct {
	Name, ID string
	Address  string // as other hosts reach it
	Port     int
	Check    string // HTTP path Consul polls: "/health/ready"
	Tags     []string
}

// Register registers s with the local Consul agent and returns the function
// that deregisters it (call it on shutdown). A service whose check stays
// critical for a minute is removed by Consul itself, so a crash leaves no
// ghost behind.
func Register(ctx context.Context, c *api.Client, s Service) (deregister func(), err error) {
	reg := &api.AgentServiceRegistration{
		ID: s.ID, Name: s.Name, Address: s.Address, Port: s.Port, Tags: s.Tags,
		Check: &api.AgentServiceCheck{
			HTTP:                           "http://" + net.JoinHostPort(s.Address, strconv.Itoa(s.Port)) + s.Check,
			Interval:                       "10s",
			Timeout:                        "2s",
			DeregisterCriticalServiceAfter: "1m",
		},
	}
	if err := c.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("register %s with consul: %w", s.ID, err)
	}
	return func() { _ = c.Agent().ServiceDeregister(s.ID) }, nil
}

// RegisterListener registers the service name listening on ln with the
// Consul agent at consulAddr, as host (default: the host name), checked on
// check; id defaults to name-host-port. It returns the deregistration.
func RegisterListener(ctx context.Context, consulAddr, name, id, host string, ln net.Listener, check string) (func(), error) {
	c, err := Client(consulAddr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return nil, err
		}
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if id == "" {
		id = fmt.Sprintf("%s-%s-%d", name, host, port)
	}
	return Register(ctx, c, Service{Name: name, ID: id, Address: host, Port: port, Check: check})
}

// CoreService is core's name in Consul.
const CoreService = "ytcaption-core"

// CoreResolver finds healthy core instances through the Consul agent at
// consulAddr, coreURL's host serving while Consul knows none. Run it.
func CoreResolver(log *slog.Logger, consulAddr, coreURL string) (*Resolver, error) {
	u, err := url.Parse(coreURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("core url %q: %v", coreURL, err)
	}
	c, err := Client(consulAddr)
	if err != nil {
		return nil, fmt.Errorf("consul: %w", err)
	}
	return NewResolver(log, c, CoreService, u.Host), nil
}

// Resolver keeps the healthy instances of a service current with blocking
// queries and hands them out in turn.
type Resolver struct {
	client   *api.Client
	service  string
	fallback string // host:port used when Consul offers none
	log      *slog.Logger
	wait     time.Duration

	mu    sync.Mutex
	addrs []string
	next  atomic.Uint64
}

// NewResolver resolves service, or fallback ("host:port") while Consul has
// no healthy instance or cannot be reached. Run keeps it current.
func NewResolver(log *slog.Logger, c *api.Client, service, fallback string) *Resolver {
	return &Resolver{client: c, service: service, fallback: fallback, log: log, wait: 5 * time.Minute}
}

// Run follows the service's health until ctx ends.
func (r *Resolver) Run(ctx context.Context) {
	var index uint64
	failures := 0
	for ctx.Err() == nil {
		entries, meta, err := r.client.Health().Service(r.service, "", true, (&api.QueryOptions{WaitIndex: index, WaitTime: r.wait}).WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			r.set(nil) // Consul is away: the fallback serves
			r.log.WarnContext(ctx, "consul health query", "service", r.service, "err", err)
			backoff.Sleep(ctx, backoff.Full(failures, time.Second, 30*time.Second))
			index = 0
			continue
		}
		failures = 0
		// Consul's index only grows; one that goes back (a restored or new
		// leader) means start over, not wait on a stale index.
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		var addrs []string
		for _, e := range entries {
			host := e.Service.Address
			if host == "" {
				host = e.Node.Address
			}
			addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(e.Service.Port)))
		}
		r.set(addrs)
	}
}

func (r *Resolver) set(addrs []string) {
	r.mu.Lock()
	r.addrs = addrs
	r.mu.Unlock()
}

// Addr is a healthy instance's host:port, in turn, or the fallback.
func (r *Resolver) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.addrs) == 0 {
		return r.fallback
	}
	return r.addrs[r.next.Add(1)%uint64(len(r.addrs))]
}

// Transport sends each request to an instance the resolver picks: clients
// are built for a base URL whose host is a placeholder.
type Transport struct {
	Base     http.RoundTripper
	Resolver *Resolver
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Host = t.Resolver.Addr()
	req.Host = req.URL.Host
	return t.Base.RoundTrip(req)
}
