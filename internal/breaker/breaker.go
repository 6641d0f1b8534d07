// Package breaker guards ytcaption's dependencies (YouTube through yt-dlp,
// the blob store, speech engines, webhook targets) with circuit breakers, and
// exports their state as ytcaption_circuit_breaker_state{dependency}:
// 0 closed, 1 half-open, 2 open.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// ErrOpen is returned, wrapped, when a breaker refuses a call.
var ErrOpen = errors.New("circuit breaker open")

// Config tunes a breaker.
type Config struct {
	// Failures in a row that open the breaker; default 5.
	Failures uint32
	// How long it stays open before letting a trial call through; default 30 s.
	Cooldown time.Duration
	// Counts reports whether err says the dependency is failing. Errors it
	// rejects (a private video, a bad file) pass through without tripping
	// anything. Cancellation never counts. Default: every error.
	Counts func(err error) bool
}

// Breaker is one dependency's circuit breaker.
type Breaker struct {
	name     string
	settings gobreaker.Settings
	cb       atomic.Pointer[gobreaker.CircuitBreaker[struct{}]] // swapped by Reset
}

// New returns a breaker for dependency and registers its state gauge on reg
// (nil: not exported).
func New(reg prometheus.Registerer, dependency string, cfg Config) *Breaker {
	if cfg.Failures == 0 {
		cfg.Failures = 5
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = 30 * time.Second
	}
	counts := cfg.Counts
	if counts == nil {
		counts = func(error) bool { return true }
	}
	b := &Breaker{name: dependency, settings: gobreaker.Settings{
		Name:        dependency,
		MaxRequests: 1,
		Timeout:     cfg.Cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		// We cancelled: says nothing about the dependency. (A timeout does.)
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		IsSuccessful: func(err error) bool { return err == nil || !counts(err) },
	}}
	b.cb.Store(gobreaker.NewCircuitBreaker[struct{}](b.settings))
	if reg != nil {
		// Read at scrape time: gobreaker moves from open to half-open lazily.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "ytcaption_circuit_breaker_state",
			Help:        "Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open.",
			ConstLabels: prometheus.Labels{"dependency": dependency},
		}, func() float64 { return float64(b.cb.Load().State()) }))
	}
	return b
}

// Do runs fn unless the breaker is open.
func (b *Breaker) Do(fn func() error) error {
	_, err := b.cb.Load().Execute(func() (struct{}, error) { return struct{}{}, fn() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%s: %w", b.name, ErrOpen)
	}
	return err
}

// Open reports whether the breaker currently refuses calls.
func (b *Breaker) Open() bool { return b.cb.Load().State() == gobreaker.StateOpen }

// Name is the dependency the breaker guards.
func (b *Breaker) Name() string { return b.name }

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.Load().State().String() }

// Failures is the count of failures in a row.
func (b *Breaker) Failures() uint32 { return b.cb.Load().Counts().ConsecutiveFailures }

// Reset closes the breaker with clean counts, for an operator who knows the
// dependency is back before the cooldown says so.
func (b *Breaker) Reset() { b.cb.Store(gobreaker.NewCircuitBreaker[struct{}](b.settings)) }

// Set holds breakers made on demand, one per name (a webhook target's host),
// with one Config. They are not exported as metrics: their names come from
// users and are unbounded.
type Set struct {
	prefix string
	cfg    Config
	mu     sync.Mutex
	m      map[string]*Breaker
}

// NewSet returns an empty Set whose breakers are named prefix+name.
func NewSet(prefix string, cfg Config) *Set {
	return &Set{prefix: prefix, cfg: cfg, m: map[string]*Breaker{}}
}

// Get returns name's breaker, made on first use.
func (s *Set) Get(name string) *Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		b = New(nil, s.prefix+name, s.cfg)
		s.m[name] = b
	}
	return b
}

// All returns the set's breakers by name.
func (s *Set) All() []*Breaker {
	s.mu.Lock()
	out := make([]*Breaker, 0, len(s.m))
	for _, b := range s.m {
		out = append(out, b)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
