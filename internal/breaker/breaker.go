// Package breaker guards ytcaption's dependencies (YouTube through yt-dlp,
// the blob store, speech engines, webhook targets) with circuit breakers, and
// exports their state as ytcaption_circuit_breaker_state{dependency}:
// 0 closed, 1 half-open, 2 open.
package breaker

import (
	"context"
	"errors"
	"fmt"
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
	name string
	cb   *gobreaker.CircuitBreaker[struct{}]
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
	b := &Breaker{name: dependency, cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        dependency,
		MaxRequests: 1,
		Timeout:     cfg.Cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		// We cancelled: says nothing about the dependency. (A timeout does.)
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		IsSuccessful: func(err error) bool { return err == nil || !counts(err) },
	})}
	if reg != nil {
		// Read at scrape time: gobreaker moves from open to half-open lazily.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "ytcaption_circuit_breaker_state",
			Help:        "Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open.",
			ConstLabels: prometheus.Labels{"dependency": dependency},
		}, func() float64 { return float64(b.cb.State()) }))
	}
	return b
}

// Do runs fn unless the breaker is open.
func (b *Breaker) Do(fn func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, fn() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%s: %w", b.name, ErrOpen)
	}
	return err
}

// Open reports whether the breaker currently refuses calls.
func (b *Breaker) Open() bool { return b.cb.State() == gobreaker.StateOpen }
