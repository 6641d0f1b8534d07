package gate

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/ytcaption/ytcaption/edge/internal/ratelimit"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
)

// SharedLimit is what one client address (an IPv6 /64) may ask of the
// share-link routes, which need no API key: a page view is a few requests
// and a player seeking in the audio a few more, so a person never meets it,
// while guessing tokens — 2²⁵⁶ of them — or hammering a link someone
// posted costs core at most 2 lookups a second per address.
var SharedLimit = ratelimit.Limit{Name: "shared", Rate: 2, Burst: 60}

// LimitShared takes one request of a share-link route from addr's budget
// (SharedLimit): the headers that describe it, and an Exhausted refusal
// past it.
func (g *Gate) LimitShared(ctx context.Context, addr netip.Addr) (http.Header, error) {
	return g.take(ctx, clientaddr.Bucket(addr), SharedLimit, "your address")
}
