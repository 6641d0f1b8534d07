// Package clientaddr finds the address a request came from, for limits kept
// per client: the TCP peer — or, only when that peer is a proxy the operator
// named as trusted, the right-most address in X-Forwarded-For that is not
// itself a trusted proxy. Everything to the left of that hop was written by
// the client and proves nothing.
package clientaddr

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Resolver knows which proxies may speak for a client.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting X-Forwarded-For from peers in trusted.
func New(trusted []netip.Prefix) Resolver { return Resolver{trusted: trusted} }

// ParsePrefixes reads a comma-separated list of CIDR prefixes or single
// addresses ("10.0.0.0/8, 192.0.2.7, fd00::/8").
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		a = normal(a)
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Trusted returns the prefixes of the trusted proxies, for whatever else
// must trust the same peers (the REST listener's X-Forwarded-Host).
func (r Resolver) Trusted() []netip.Prefix { return slices.Clone(r.trusted) }

func (r Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client's address for a request from peer carrying the
// given X-Forwarded-For header values (in the order received). An invalid
// peer yields the zero Addr.
func (r Resolver) Resolve(peer netip.Addr, forwardedFor []string) netip.Addr {
	client := normal(peer)
	if !client.IsValid() || !r.isTrusted(client) {
		return client
	}
	var hops []string
	for _, v := range forwardedFor {
		hops = append(hops, strings.Split(v, ",")...)
	}
	// Walk from the nearest hop outwards: each trusted proxy vouches for the
	// hop before it; the first untrusted one is the client.
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return client // garbage: stay with the last address a trusted proxy vouched for
		}
		client = a
		if !r.isTrusted(a) {
			return client
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For element: an address, perhaps with a port
// or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return normal(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normal(ap.Addr()), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return normal(a), true
	}
	return netip.Addr{}, false
}

// Peer is the address of a net/http request's TCP peer (its RemoteAddr);
// the zero Addr when RemoteAddr holds none.
func Peer(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return normal(ap.Addr())
}

// normal drops a zone (a prefix never contains a zoned address) and unmaps
// IPv4-mapped IPv6, so one client has one form.
func normal(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }

// Bucket names the limit an address counts against: an IPv4 address itself,
// an IPv6 address's /64 — one subscriber usually holds a whole /64, and would
// otherwise have 2⁶⁴ fresh budgets.
func Bucket(a netip.Addr) string {
	a = normal(a)
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
