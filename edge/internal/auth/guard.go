package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ytcaption/ytcaption/edge/internal/ratelimit"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
)

// ErrThrottled means the client's address has had too many keys refused
// lately; the error is a *ThrottledError carrying when to come back.
var ErrThrottled = errors.New("too many refused API keys from this address")

// ThrottledError is ErrThrottled with its Retry-After.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v; retry in %s", ErrThrottled, e.RetryAfter.Round(time.Second))
}

func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Guard is the one authentication gate both transports use: it resolves a
// key through the Cache and limits refused keys per client address, so a
// flood of guessed keys costs core a bounded number of lookups.
//
// A key the cache holds as valid passes without touching the limiter: an
// office behind one NAT address keeps working while someone there guesses.
// Any other key takes a request from the address's budget before core is
// asked, and gives it back when the key turns out valid (or core cannot
// answer): only refusals count, and no burst of concurrent guesses can
// overshoot the budget. Requests for a key whose lookup is in flight wait
// for it and take nothing unless it is refused.
type Guard struct {
	keys    *Cache
	limiter *ratelimit.Limiter
	limit   ratelimit.Limit
}

// NewGuard returns a Guard allowing perAddress refused keys per client
// address (its Name is the bucket's).
func NewGuard(keys *Cache, limiter *ratelimit.Limiter, perAddress ratelimit.Limit) *Guard {
	return &Guard{keys: keys, limiter: limiter, limit: perAddress}
}

// Authenticate resolves key for a request from addr. Errors: ErrUnauthorized,
// ErrUnavailable, or a *ThrottledError (errors.Is ErrThrottled).
func (g *Guard) Authenticate(ctx context.Context, key string, addr netip.Addr) (Principal, error) {
	if key == "" {
		return Principal{}, ErrUnauthorized // nothing to look up: costs nothing, counts nothing
	}
	if p, ok := g.keys.Current(ctx, key); ok {
		return p, nil
	}
	bucket := clientaddr.Bucket(addr)
	for {
		// One request leads the lookup of a key that missed the cache; the
		// others wait for its answer and take nothing from the address's
		// budget unless the key is refused. The lookup is registered before
		// the leader takes from the budget: when a busy client's entry
		// expired, every request that missed it before the leader's lookup
		// was known used to take from that budget too, and those past it got
		// 429 "too many invalid API keys" for a valid key (the soak found
		// 23 of 120 at once).
		f := g.keys.start(key)
		if !f.lead {
			p, err := f.wait(ctx)
			if errors.Is(err, errAbandoned) {
				continue // the leader was throttled: this request tries for itself
			}
			if errors.Is(err, ErrUnauthorized) {
				if d := g.limiter.Allow(ctx, bucket, g.limit); !d.Allowed {
					return Principal{}, &ThrottledError{RetryAfter: d.RetryAfter}
				}
			}
			return p, err
		}
		d := g.limiter.Allow(ctx, bucket, g.limit)
		if !d.Allowed {
			g.keys.abandon(f)
			return Principal{}, &ThrottledError{RetryAfter: d.RetryAfter}
		}
		p, err := g.keys.finish(ctx, key, f)
		if !errors.Is(err, ErrUnauthorized) {
			g.limiter.Return(context.WithoutCancel(ctx), bucket, g.limit, d)
		}
		return p, err
	}
}
