// Package egress is ytcaption's one policy for connections to addresses that
// strangers choose: media URLs and every redirect they take, webhooks, and any
// other outbound call built from user input. It owns the single table of
// refused address ranges — the IANA IPv4 and IPv6 special-purpose address
// registries whole, multicast, and all IPv6 space outside global unicast — and
// the checks that apply it: on a literal host when a request is accepted
// (CheckHost), on the resolved address right before every connect
// (Policy.Control, so DNS rebinding cannot slip through), and on every redirect
// (NewClient).
package egress

import (
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// ErrAddressNotAllowed is wrapped by every refusal (an *AddressError).
var ErrAddressNotAllowed = errors.New("address not allowed")

// AddressError says which address or host was refused and why.
type AddressError struct {
	Addr   string // the address as checked (unmapped), or the host as given
	Reason string // the registry's name of the range it falls in, or why it is refused
}

func (e *AddressError) Error() string {
	return "address not allowed: " + e.Addr + " is " + e.Reason
}

func (e *AddressError) Unwrap() error { return ErrAddressNotAllowed }

// block is one refused range.
type block struct {
	prefix netip.Prefix
	name   string
	// local marks a developer's own machine and networks: Policy.AllowPrivate
	// admits these and nothing else in the table.
	local bool
}

func refused(prefix, name string) block {
	return block{prefix: netip.MustParsePrefix(prefix), name: name}
}
func local(prefix, name string) block {
	return block{prefix: netip.MustParsePrefix(prefix), name: name, local: true}
}

// blocks is the one table. The first match names the refusal, so narrower
// entries come before the wider ones that hold them. Sources: the IANA IPv4
// and IPv6 Special-Purpose Address Registries (RFC 6890 and its updates), the
// multicast registries, and the IPv6 address space registry (only 2000::/3 is
// global unicast; the rest is reserved by the IETF or special).
var blocks = []block{
	// IPv4 special-purpose registry.
	refused("0.0.0.0/8", `"this network" (RFC 791); connecting to 0.0.0.0 reaches the local host`),
	local("10.0.0.0/8", "private-use (RFC 1918)"),
	local("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
	local("127.0.0.0/8", "loopback (RFC 1122)"),
	// Link-local stays refused even for the dev stack: cloud metadata services
	// (169.254.169.254) live here and no media does.
	refused("169.254.0.0/16", "link-local (RFC 3927), home of cloud metadata services"),
	local("172.16.0.0/12", "private-use (RFC 1918)"),
	refused("192.0.0.0/24", "IETF protocol assignments (RFC 6890): DS-Lite, PCP and TURN anycast, NAT64 discovery"),
	refused("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
	refused("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
	refused("192.52.193.0/24", "AMT (RFC 7450)"),
	refused("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
	local("192.168.0.0/16", "private-use (RFC 1918)"),
	refused("192.175.48.0/24", "direct delegation AS112 service (RFC 7534)"),
	refused("198.18.0.0/15", "benchmarking (RFC 2544)"),
	refused("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
	refused("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
	refused("224.0.0.0/4", "multicast (RFC 5771)"),
	refused("255.255.255.255/32", "limited broadcast (RFC 919)"),
	refused("240.0.0.0/4", "reserved (RFC 1112)"),

	// IPv6 special-purpose registry.
	refused("::/128", "unspecified (RFC 4291); connecting to :: reaches the local host"),
	local("::1/128", "loopback (RFC 4291)"),
	// Never matched: Check unmaps these first and judges the IPv4 address they
	// carry, which is what Go dials for them. Listed so the table is the
	// registry whole.
	refused("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
	// IPv4-compatible addresses are deprecated; the kernel does not route them
	// as IPv4, so the whole range is refused rather than unmapped and judged.
	refused("::/96", "IPv4-compatible, deprecated (RFC 4291)"),
	// Translation prefixes embed an IPv4 address that a NAT64 gateway would
	// connect to — 64:ff9b::7f00:1 is 127.0.0.1 — so they are refused whole.
	refused("64:ff9b::/96", "IPv4/IPv6 translation, NAT64 well-known prefix (RFC 6052)"),
	refused("64:ff9b:1::/48", "IPv4/IPv6 translation, local-use NAT64 (RFC 8215)"),
	refused("100::/64", "discard-only (RFC 6666)"),
	refused("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
	refused("2001::/32", "Teredo (RFC 4380)"),
	refused("2001::/23", "IETF protocol assignments (RFC 2928): PCP/TURN/DNS-SD anycast, benchmarking 2001:2::/48, AMT 2001:3::/32, AS112 2001:4:112::/48, ORCHIDv2 2001:20::/28, DETs 2001:30::/28"),
	refused("2001:db8::/32", "documentation (RFC 3849)"),
	// 6to4 embeds an IPv4 address too: 2002:7f00:1:: carries 127.0.0.1.
	refused("2002::/16", "6to4 (RFC 3056)"),
	refused("2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)"),
	refused("3fff::/20", "documentation (RFC 9637)"),
	refused("5f00::/16", "segment routing SIDs (RFC 9602)"),
	local("fc00::/7", "unique-local (RFC 4193)"),
	refused("fe80::/10", "link-local unicast (RFC 4291)"),
	refused("fec0::/10", "site-local, deprecated (RFC 3879)"),
	refused("ff00::/8", "multicast (RFC 4291)"),

	// IPv6 address space outside 2000::/3, the only global unicast block: what
	// the IETF has not assigned yet is refused before anyone assigns it.
	refused("::/3", "IPv6 space reserved by the IETF, not global unicast (RFC 4291)"),
	refused("4000::/2", "IPv6 space reserved by the IETF, not global unicast (RFC 4291)"),
	refused("8000::/1", "IPv6 space reserved by the IETF, not global unicast (RFC 4291)"),
}

// Policy says which addresses outbound connections may reach. The zero
// Policy is production's: every range in the table is refused.
type Policy struct {
	// AllowPrivate admits loopback, private-use, shared (CGNAT) and
	// unique-local addresses and "localhost" names: the dev stack and tests.
	// Never unspecified, link-local, multicast, zones or the rest of the table.
	AllowPrivate bool
	// Allow admits the ranges an operator names explicitly — an internal
	// media server, a test server on 127.0.0.2/32 — although the table
	// refuses them, and only those: it is narrower than AllowPrivate and
	// works without it. Addresses with a zone and invalid addresses stay
	// refused, and "localhost" names stay governed by AllowPrivate alone
	// (what a name resolves to is judged when it is dialled). IPv4 ranges
	// are written as IPv4 (127.0.0.2/32): addresses are unmapped before
	// they are compared, so an IPv4-mapped prefix admits nothing.
	Allow []netip.Prefix
}

// Check refuses an address in a refused range under the production policy.
func Check(addr netip.Addr) error { return Policy{}.Check(addr) }

// Check says whether a connection to addr is allowed. An address with a zone
// (fe80::1%eth0, ::1%lo) is refused outright, whatever the address: a zone
// only means something on link-local and multicast addresses, which are
// refused anyway; it would make the dialer pick an interface; and
// netip.Prefix.Contains is false for any zoned address, so stripping it would
// leave correctness to every caller remembering to. IPv4-mapped addresses
// (::ffff:127.0.0.1) are judged as the IPv4 address Go dials for them.
func (p Policy) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return &AddressError{Addr: "invalid address", Reason: "not an IP address"}
	}
	if addr.Zone() != "" {
		return &AddressError{Addr: addr.String(), Reason: "an address with a zone (scoped to one interface)"}
	}
	addr = addr.Unmap()
	for _, pfx := range p.Allow {
		if pfx.Contains(addr) {
			return nil
		}
	}
	for _, b := range blocks {
		if b.prefix.Contains(addr) {
			if p.AllowPrivate && b.local {
				return nil
			}
			return &AddressError{Addr: addr.String(), Reason: b.name}
		}
	}
	return nil
}

// CheckHost checks a URL's host when a request is accepted, so a refused
// literal address fails at once rather than from a failed job. host is what
// url.URL.Hostname returns (a Host with brackets and no port works too). It
// parses every literal form a dialer may accept — IPv6 with a zone, IPv4 with
// a zone (Go's dialer splits "%zone" off any literal), the inet_aton forms
// that glibc's resolver turns into addresses (2130706433, 0x7f000001,
// 0177.0.0.1, 127.1), and Unicode forms that IDNA maps to any of these —
// ignoring trailing dots, and refuses "localhost" and *.localhost names
// (RFC 6761) unless loopback is allowed. Other names pass: what they resolve
// to is checked when they are dialled.
func (p Policy) CheckHost(host string) error {
	h := host
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	if !isASCII(h) {
		// net/http maps a non-ASCII host through IDNA (UTS #46) before it
		// resolves or dials: "１２７.０.０.１" and "127。0。0。1" are 127.0.0.1,
		// "ｌｏｃａｌｈｏｓｔ" is localhost. Judge what it will dial.
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return &AddressError{Addr: host, Reason: "a host that maps to no ASCII name (IDNA)"}
		}
		h = a
	}
	switch {
	case h == "":
		return &AddressError{Addr: `""`, Reason: "an empty host"}
	case strings.ContainsAny(h, "[]"):
		// Half a bracket pair, or one inside: no name holds either, and
		// which part a parser would take as the address is anyone's guess.
		return &AddressError{Addr: host, Reason: "a host with stray brackets"}
	case strings.IndexByte(h, '%') >= 0:
		// A zone (or a percent sign no DNS name holds): refused whatever
		// precedes it, for the reasons Check gives.
		return &AddressError{Addr: host, Reason: "a host with a zone (scoped to one interface)"}
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return p.Check(a)
	}
	name := strings.ToLower(strings.TrimRight(h, "."))
	if a, ok := parseIPv4Loose(name); ok {
		return p.Check(a)
	}
	if a, err := netip.ParseAddr(name); err == nil { // an address with trailing dots
		return p.Check(a)
	}
	if !p.AllowPrivate && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
		return &AddressError{Addr: host, Reason: "a localhost name (RFC 6761)"}
	}
	return nil
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// parseIPv4Loose parses the IPv4 forms inet_aton accepts: one to four parts
// separated by dots, each decimal, octal (leading 0) or hex (leading 0x), the
// last filling the bytes that remain (127.1 is 127.0.0.1, 2130706433 is
// 127.0.0.1). It errs towards reading an address: "0x" is 0.
func parseIPv4Loose(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, part := range parts {
		v, ok := parseInetPart(part)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	n := len(parts)
	// Every part but the last is one byte; the last fills the rest.
	for i := range n - 1 {
		if vals[i] > 0xff {
			return netip.Addr{}, false
		}
	}
	if vals[n-1] >= 1<<(8*(5-n)) {
		return netip.Addr{}, false
	}
	var v uint32
	for i := range n - 1 {
		v |= uint32(vals[i]) << (8 * (3 - i))
	}
	v |= uint32(vals[n-1])
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func parseInetPart(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base, digits := uint64(10), s
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case len(s) >= 2 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	var v uint64
	for _, c := range []byte(digits) {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
		if v > 0xffffffff {
			return 0, false
		}
	}
	return v, true
}
