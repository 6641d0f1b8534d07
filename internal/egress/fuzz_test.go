package egress

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// FuzzCheckHost: CheckHost never panics, and whatever host parses — after
// net/http's IDNA mapping, by net/netip, by the dialer's own parser
// (net.ParseIP after splitting off a zone), or as an inet_aton form read by
// strconv — to a refused address is
// refused; so are zones and localhost names; and the dev stack's policy
// refuses nothing production allows. Seeds are in testdata/fuzz/FuzzCheckHost.
func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "[::1%25lo]", "::1%lo", "2130706433", "0x7f000001", "localhost.", "example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		checkHostProperties(t, host)
		if u, err := url.Parse("http://" + host + "/"); err == nil {
			checkHostProperties(t, u.Hostname())
		}
	})
}

func checkHostProperties(t *testing.T, host string) {
	prod := Policy{}.CheckHost(host)
	dev := Policy{AllowPrivate: true}.CheckHost(host)
	if dev != nil && prod == nil {
		t.Fatalf("%q: refused by the dev stack (%v) but allowed in production", host, dev)
	}
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !isASCII(h) { // net/http maps a non-ASCII host through IDNA before dialling
		a, err := idna.Lookup.ToASCII(h)
		if err != nil {
			if prod == nil {
				t.Fatalf("%q maps to no ASCII name (%v) but was allowed", host, err)
			}
			return
		}
		h = a
	}
	refuse := func(why string, a netip.Addr) {
		if Check(a) != nil && prod == nil {
			t.Fatalf("%q parses (%s) to refused %s but CheckHost allowed it", host, why, a)
		}
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" && prod == nil {
			t.Fatalf("%q has a zone but was allowed", host)
		}
		refuse("netip", a)
	}
	// The dialer splits a zone off at the last '%' and parses the rest.
	addr, zone := h, ""
	if i := strings.LastIndexByte(h, '%'); i >= 0 {
		addr, zone = h[:i], h[i+1:]
	}
	if ip := net.ParseIP(addr); ip != nil {
		if zone != "" && prod == nil {
			t.Fatalf("%q: the dialer would use zone %q but it was allowed", host, zone)
		}
		a, _ := netip.AddrFromSlice(ip)
		refuse("net.ParseIP", a)
	}
	name := strings.ToLower(strings.TrimRight(h, "."))
	if a, ok := inetATON(name); ok {
		refuse("inet_aton", a)
	}
	if (name == "localhost" || strings.HasSuffix(name, ".localhost")) && prod == nil {
		t.Fatalf("%q is a localhost name but was allowed", host)
	}
}

// inetATON is a second reading of inet_aton's forms, through strconv, to
// check parseIPv4Loose against.
func inetATON(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v []uint64
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "_+-oObB") {
			return netip.Addr{}, false // strconv's extras, not inet_aton's
		}
		n, err := strconv.ParseUint(p, 0, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		v = append(v, n)
	}
	var out uint64
	for i, n := range v[:len(v)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		out |= n << (8 * (3 - i))
	}
	last := v[len(v)-1]
	if last >= 1<<(8*(5-len(v))) {
		return netip.Addr{}, false
	}
	out |= last
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}
