// Package redisx opens the edge's Redis client — rate limits and the
// idempotency replay copies live there — with the settings an optional
// dependency needs: short timeouts, no retries, and one circuit breaker, so an
// outage costs a request milliseconds, not seconds.
package redisx

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/ytcaption/ytcaption/internal/breaker"
)

// Open returns a client for url ("redis://host:port/db") and the breaker to
// wrap its calls in; an empty url returns a nil client (no Redis).
func Open(url string, reg prometheus.Registerer) (*redis.Client, *breaker.Breaker, error) {
	// A short cooldown: Redis is back in seconds after a restart or failover.
	br := breaker.New(reg, "redis", breaker.Config{Cooldown: 5 * time.Second})
	if url == "" {
		return nil, br, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, err
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	opts.MaxRetries, opts.DialerRetries = 0, 1
	// Maintenance notifications are Redis Enterprise's and Cloud's: a
	// self-hosted Redis refuses the handshake, and the feature starts
	// goroutines of its own per client.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(opts), br, nil
}

// quiet drops go-redis's own log lines: during an outage it would print one
// per request, and the callers' fallback counters and the breaker gauge
// already tell.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quiet{}) }
