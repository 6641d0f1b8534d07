// Package auth resolves API keys to users for the edge. Core holds the keys
// (hashed); the edge asks it once per key and remembers the answer briefly, so
// a busy client costs core one lookup per TTL, and a revoked key stops working
// within that TTL.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// Principal is an authenticated caller.
type Principal struct {
	UserID string
	Role   string
	// KeyID names the API key without revealing it (a SHA-256 prefix): rate
	// limits are kept per key.
	KeyID  string
	Limits *ytcaptionv1.RateLimits // nil when core sent none
}

var (
	// ErrUnauthorized means the key is unknown or revoked.
	ErrUnauthorized = errors.New("invalid API key")
	// ErrUnavailable means core could not be asked; never answer 401 for it.
	ErrUnavailable = errors.New("cannot check API keys now")
)

type entry struct {
	p       Principal
	err     error
	expires time.Time
}

// call is one in-flight lookup that concurrent requests for the same key share.
type call struct {
	done chan struct{}
	e    entry
}

// Cache looks keys up in core and caches the answers by SHA-256 of the key,
// so the keys themselves are never kept.
type Cache struct {
	client      ytcaptionv1connect.AuthServiceClient
	ttl, negTTL time.Duration
	now         func() time.Time

	mu       sync.Mutex
	entries  map[[32]byte]entry
	inflight map[[32]byte]*call
}

// maxEntries bounds memory when clients spray random keys.
const maxEntries = 100_000

// New returns a Cache; ttl applies to valid keys, negTTL to refused ones.
func New(client ytcaptionv1connect.AuthServiceClient, ttl, negTTL time.Duration) *Cache {
	return &Cache{client: client, ttl: ttl, negTTL: negTTL, now: time.Now,
		entries: map[[32]byte]entry{}, inflight: map[[32]byte]*call{}}
}

// Lookup resolves key.
func (c *Cache) Lookup(ctx context.Context, key string) (Principal, error) {
	if key == "" {
		return Principal{}, ErrUnauthorized
	}
	h := sha256.Sum256([]byte(key))
	c.mu.Lock()
	if e, ok := c.entries[h]; ok && c.now().Before(e.expires) {
		c.mu.Unlock()
		return e.p, e.err
	}
	if cl, ok := c.inflight[h]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.e.p, cl.e.err
		case <-ctx.Done():
			return Principal{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[h] = cl
	c.mu.Unlock()

	cl.e = c.ask(ctx, key)
	cl.e.p.KeyID = hex.EncodeToString(h[:12])
	c.mu.Lock()
	delete(c.inflight, h)
	if cl.e.err == nil || errors.Is(cl.e.err, ErrUnauthorized) {
		if len(c.entries) >= maxEntries {
			clear(c.entries)
		}
		c.entries[h] = cl.e
	}
	c.mu.Unlock()
	close(cl.done)
	return cl.e.p, cl.e.err
}

func (c *Cache) ask(ctx context.Context, key string) entry {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.client.Authenticate(ctx, connect.NewRequest(&ytcaptionv1.AuthenticateRequest{ApiKey: key}))
	now := c.now()
	switch {
	case err == nil:
		return entry{p: Principal{UserID: resp.Msg.GetUserId(), Role: resp.Msg.GetRole(), Limits: resp.Msg.GetRateLimits()}, expires: now.Add(c.ttl)}
	case connect.CodeOf(err) == connect.CodeUnauthenticated:
		return entry{err: ErrUnauthorized, expires: now.Add(c.negTTL)}
	}
	return entry{err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
}
