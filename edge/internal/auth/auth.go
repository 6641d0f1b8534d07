// Package auth resolves API keys to users for the edge. Core holds the keys
// (hashed); the edge asks it once per key and remembers the answer briefly, so
// a busy client costs core one lookup per TTL, and a revoked key stops working
// within that TTL. A key in use is looked up again in the background in the
// last quarter of its TTL (Current), so its requests never wait for core
// while it stays busy. Guard adds the per-address limit on refused keys that
// both transports apply before a key costs core a lookup.
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
	expires time.Time
}

// call is one in-flight lookup that concurrent requests for the same key share.
type call struct {
	done    chan struct{}
	p       Principal
	err     error
	waiting int // requests sharing the answer (for tests)
}

// Cache looks keys up in core and caches the answers by SHA-256 of the key,
// so the keys themselves are never kept. Valid keys and refused ones live in
// separate bounded LRUs: a flood of made-up keys churns only the refused
// side and can never evict a key that works.
type Cache struct {
	client      ytcaptionv1connect.AuthServiceClient
	ttl, negTTL time.Duration
	now         func() time.Time

	mu       sync.Mutex
	valid    *lru[[32]byte, entry]
	refused  *lru[[32]byte, time.Time] // until when
	inflight map[[32]byte]*call
}

// Bounds on memory when clients spray keys: about 200 bytes an entry.
const (
	maxValid   = 100_000
	maxRefused = 10_000
)

// New returns a Cache; ttl applies to valid keys, negTTL to refused ones.
func New(client ytcaptionv1connect.AuthServiceClient, ttl, negTTL time.Duration) *Cache {
	return &Cache{client: client, ttl: ttl, negTTL: negTTL, now: time.Now,
		valid: newLRU[[32]byte, entry](maxValid), refused: newLRU[[32]byte, time.Time](maxRefused),
		inflight: map[[32]byte]*call{}}
}

// refreshAhead: a valid key is looked up again once less than a
// refreshAhead-th of its TTL is left. Without it, every TTL all of a busy
// key's requests waited for one lookup in core; under load that lookup
// took tens of milliseconds, which showed in the creations' p99.
const refreshAhead = 4

// cached answers from memory: ok is false when core must be asked; due says
// a valid answer is in the last refreshAhead-th of its TTL.
func (c *Cache) cached(h [32]byte) (p Principal, ok, due bool, err error) {
	now := c.now()
	if e, found := c.valid.get(h); found {
		if now.Before(e.expires) {
			return e.p, true, !now.Before(e.expires.Add(-c.ttl / refreshAhead)), nil
		}
		c.valid.remove(h)
	}
	if until, found := c.refused.get(h); found {
		if now.Before(until) {
			return Principal{}, true, false, ErrUnauthorized
		}
		c.refused.remove(h)
	}
	return Principal{}, false, false, nil
}

// Current returns key's principal if the cache holds it as valid, without
// waiting for core, and keeps a key in use fresh: when the answer is due
// (refreshAhead) and no lookup of the key is in flight, it starts one in the
// background and answers from memory meanwhile. Requests that come after
// the answer expired join that lookup, as any lookup in flight. A refusal
// ends the key at once; an outage leaves the answer to its TTL.
func (c *Cache) Current(ctx context.Context, key string) (Principal, bool) {
	if key == "" {
		return Principal{}, false
	}
	h := sha256.Sum256([]byte(key))
	c.mu.Lock()
	p, ok, due, err := c.cached(h)
	var refresh *call
	if ok && err == nil && due && c.inflight[h] == nil {
		refresh = &call{done: make(chan struct{})}
		c.inflight[h] = refresh
	}
	c.mu.Unlock()
	if refresh != nil {
		// Not the request's context: the lookup outlives the request.
		go c.finish(context.WithoutCancel(ctx), key, flight{call: refresh, h: h, lead: true})
	}
	return p, ok && err == nil
}

// Lookup resolves key.
func (c *Cache) Lookup(ctx context.Context, key string) (Principal, error) {
	if key == "" {
		return Principal{}, ErrUnauthorized
	}
	if p, ok := c.Current(ctx, key); ok {
		return p, nil
	}
	for {
		f := c.start(key)
		if f.lead {
			return c.finish(ctx, key, f)
		}
		if p, err := f.wait(ctx); !errors.Is(err, errAbandoned) {
			return p, err
		}
	}
}

// flight is a request's part in the lookup of a key: the answer, if the
// cache had one; else the lookup in flight, led by the request that
// registered it (which must end it with finish or abandon) and joined by
// the others.
type flight struct {
	*call
	h      [32]byte
	lead   bool
	cached bool
}

// start answers from memory, or joins the lookup of key in flight, or
// registers one the caller leads — in one step under the lock, so however
// many requests miss at once, one leads.
func (c *Cache) start(key string) flight {
	h := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok, _, err := c.cached(h); ok {
		return flight{call: &call{p: p, err: err}, h: h, cached: true}
	}
	if cl, ok := c.inflight[h]; ok {
		cl.waiting++
		return flight{call: cl, h: h}
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[h] = cl
	return flight{call: cl, h: h, lead: true}
}

// finish asks core for the key of the flight the caller leads, caches the
// answer and hands it to the requests that joined.
func (c *Cache) finish(ctx context.Context, key string, f flight) (Principal, error) {
	cl, h := f.call, f.h
	cl.p, cl.err = c.ask(ctx, key)
	cl.p.KeyID = hex.EncodeToString(h[:12])
	now := c.now()
	c.mu.Lock()
	delete(c.inflight, h)
	switch {
	case cl.err == nil:
		c.refused.remove(h)
		c.valid.put(h, entry{p: cl.p, expires: now.Add(c.ttl)})
	case errors.Is(cl.err, ErrUnauthorized):
		c.valid.remove(h)
		c.refused.put(h, now.Add(c.negTTL))
	}
	c.mu.Unlock()
	close(cl.done)
	return cl.p, cl.err
}

// abandon ends a flight the caller leads without asking core: the requests
// that joined it get errAbandoned and start again.
func (c *Cache) abandon(f flight) {
	c.mu.Lock()
	delete(c.inflight, f.h)
	c.mu.Unlock()
	f.call.err = errAbandoned
	close(f.call.done)
}

var errAbandoned = errors.New("the lookup was abandoned")

func (f flight) wait(ctx context.Context) (Principal, error) {
	if f.cached {
		return f.p, f.err
	}
	return f.call.wait(ctx)
}

func (cl *call) wait(ctx context.Context) (Principal, error) {
	select {
	case <-cl.done:
		return cl.p, cl.err
	case <-ctx.Done():
		return Principal{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

func (c *Cache) ask(ctx context.Context, key string) (Principal, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.client.Authenticate(ctx, connect.NewRequest(&ytcaptionv1.AuthenticateRequest{ApiKey: key}))
	switch {
	case err == nil:
		return Principal{UserID: resp.Msg.GetUserId(), Role: resp.Msg.GetRole(), Limits: resp.Msg.GetRateLimits()}, nil
	case connect.CodeOf(err) == connect.CodeUnauthenticated:
		return Principal{}, ErrUnauthorized
	}
	return Principal{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
}
