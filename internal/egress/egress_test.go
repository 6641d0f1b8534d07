package egress

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSSRFTable is the address policy's table test: URLs as a user would
// submit them, the verdict under production's policy and under the dev
// stack's (AllowPrivate). The host is taken the way the fetcher and the
// webhook client take it, url.URL.Hostname.
func TestSSRFTable(t *testing.T) {
	t.Parallel()
	const (
		allowed = iota // both policies allow
		dev            // refused in production, allowed by AllowPrivate
		never          // refused by both
	)
	for _, tc := range []struct {
		url  string
		want int
	}{
		// IPv4 special-purpose registry, a case per entry.
		{"http://0.0.0.0/a.ogg", never},
		{"http://0.1.2.3/", never},
		{"http://10.0.0.1/x", dev},
		{"http://100.64.0.1/", dev},
		{"http://100.127.255.255/", dev},
		{"http://127.0.0.1/a.ogg", dev},
		{"http://127.8.9.10:8080/", dev},
		{"http://169.254.169.254/latest/meta-data/", never},
		{"http://172.16.0.1/", dev},
		{"http://172.31.255.255/", dev},
		{"http://192.0.0.170/", never},
		{"http://192.0.2.1/", never},
		{"http://192.31.196.1/", never},
		{"http://192.52.193.1/", never},
		{"http://192.88.99.1/", never},
		{"http://192.168.1.1/", dev},
		{"http://192.175.48.1/", never},
		{"http://198.18.0.1/", never},
		{"http://198.19.255.255/", never},
		{"http://198.51.100.7/", never},
		{"http://203.0.113.9/", never},
		{"http://224.0.0.1/", never},
		{"http://239.255.255.250:1900/", never},
		{"http://240.0.0.1/", never},
		{"http://255.255.255.255/", never},
		// IPv6 special-purpose registry, a case per entry, and the rest of
		// the space outside 2000::/3.
		{"http://[::]/", never},
		{"http://[::1]/a.ogg", dev},
		{"http://[0:0:0:0:0:0:0:1]/", dev},
		{"http://[::ffff:127.0.0.1]/", dev}, // mapped: judged as 127.0.0.1
		{"http://[::ffff:7f00:1]/", dev},
		{"http://[0:0:0:0:0:ffff:10.0.0.1]/", dev},
		{"http://[::ffff:169.254.169.254]/", never},
		{"http://[::127.0.0.1]/", never}, // IPv4-compatible
		{"http://[::8.8.8.8]/", never},
		{"http://[64:ff9b::7f00:1]/", never}, // NAT64 of 127.0.0.1
		{"http://[64:ff9b::8.8.8.8]/", never},
		{"http://[64:ff9b:1::a00:1]/", never},
		{"http://[100::1]/", never},
		{"http://[100:0:0:1::1]/", never},
		{"http://[2001::1]/", never}, // Teredo
		{"http://[2001:2::1]/", never},
		{"http://[2001:20::1]/", never},
		{"http://[2001:db8::1]/", never},
		{"http://[2002:7f00:1::]/", never}, // 6to4 of 127.0.0.1
		{"http://[2002:a9fe:a9fe::1]/", never},
		{"http://[2620:4f:8000::1]/", never},
		{"http://[3fff::1]/", never},
		{"http://[5f00::1]/", never},
		{"http://[fc00::1]/", dev},
		{"http://[fd12:3456::1]/", dev},
		{"http://[fe80::1]/", never},
		{"http://[fec0::1]/", never},
		{"http://[ff02::1]/", never},
		{"http://[4000::1]/", never},
		{"http://[8000::1]/", never},
		// Zones: refused whatever the address, in both policies.
		{"http://[fe80::1%25eth0]/", never},
		{"http://[::1%25lo]:8080/a.wav", never},
		{"http://[2606:4700::1%25eth0]/", never},
		{"http://127.0.0.1%25lo/", never},
		{"http://[::1%25%32%35lo]/", never}, // a zone of "%25lo"
		// IPv4 forms glibc's resolver reads as addresses.
		{"http://2130706433/", dev},
		{"http://0x7f000001/", dev},
		{"http://0X7F000001/", dev},
		{"http://0177.0.0.1/", dev},
		{"http://0177.1/", dev},
		{"http://017700000001/", dev},
		{"http://127.1/", dev},
		{"http://127.0.1/", dev},
		{"http://0x7f.0.0.1/", dev},
		{"http://3232235777/", dev},            // 192.168.1.1
		{"http://0xa9fea9fe/", never},          // 169.254.169.254
		{"http://0/", never},                   // 0.0.0.0
		{"http://0x/", never},                  // 0.0.0.0 by inet_aton's reading
		{"http://0251.0376.0251.0376/", never}, // 169.254.169.254 in octal
		// Unicode that IDNA, as net/http applies it, maps to the above.
		{"http://１２７.０.０.１/", dev},
		{"http://127。0。0。1/", dev},
		{"http://ｌｏｃａｌｈｏｓｔ/", dev},
		{"http://ⓛocalhost/", dev},
		{"http://１６９.２５４.１６９.２５４/", never},
		{"http://０ｘ７ｆ０００００１/", dev},
		// Trailing dots and case.
		{"http://127.0.0.1./", dev},
		{"http://169.254.169.254../", never},
		{"http://localhost/", dev},
		{"http://localhost./", dev},
		{"http://LOCALHOST:8080/", dev},
		{"http://foo.localhost/", dev},
		{"http://foo.LocalHost./", dev},
		// Userinfo: the host is what follows the @.
		{"http://good.example@127.0.0.1/", dev},
		{"http://user:pass@[::1]:80/", dev},
		{"http://good.example:80@169.254.169.254/", never},
		{"http://127.0.0.1:80@good.example/", allowed},
		// Public addresses and names: names are judged when dialled.
		{"http://93.184.216.34/a.ogg", allowed},
		{"http://1.1.1.1/", allowed},
		{"http://8.8.8.8./", allowed},
		{"http://172.32.0.1/", allowed},
		{"http://192.0.3.1/", allowed},
		{"http://100.128.0.1/", allowed},
		{"http://[2606:2800:220:1:248:1893:25c8:1946]/", allowed},
		{"http://[2001:4860:4860::8888]/", allowed}, // 2001: outside 2001::/23
		{"http://[::ffff:8.8.8.8]/", allowed},
		{"https://media.example.com/a.ogg", allowed},
		{"http://localhost.example.com/", allowed},
		{"http://xlocalhost/", allowed},
		{"http://1.2.3.4.5/", allowed},
		{"http://0x7g000001/", allowed},
		{"http://bücher.example/", allowed},
	} {
		u, err := url.Parse(tc.url)
		require.NoError(t, err, tc.url)
		prod := Policy{}.CheckHost(u.Hostname())
		devErr := Policy{AllowPrivate: true}.CheckHost(u.Hostname())
		require.Equal(t, tc.want != allowed, prod != nil, "production: %s: %v", tc.url, prod)
		require.Equal(t, tc.want == never, devErr != nil, "dev stack: %s: %v", tc.url, devErr)
		for _, err := range []error{prod, devErr} {
			if err != nil {
				require.ErrorIs(t, err, ErrAddressNotAllowed, tc.url)
				var ae *AddressError
				require.True(t, errors.As(err, &ae), tc.url)
			}
		}
	}
}

// TestCheckZonesAndMapping: addresses as the dialer hands them to Control.
func TestCheckZonesAndMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"fe80::1%eth0", false},
		{"::1%lo", false},
		{"2606:4700::1%eth0", false}, // a global address with a zone
		{"::ffff:127.0.0.1", false},
		{"::ffff:93.184.216.34", true},
		{"::127.0.0.1", false},
		{"64:ff9b::7f00:1", false},
		{"2002:7f00:1::", false},
		{"93.184.216.34", true},
	} {
		err := Check(netip.MustParseAddr(tc.addr))
		require.Equal(t, tc.allowed, err == nil, "%s: %v", tc.addr, err)
	}
	require.ErrorIs(t, Check(netip.Addr{}), ErrAddressNotAllowed, "the zero Addr")
	dev := Policy{AllowPrivate: true}
	require.NoError(t, dev.Check(netip.MustParseAddr("127.0.0.1")))
	require.NoError(t, dev.Check(netip.MustParseAddr("::1")))
	for _, a := range []string{"0.0.0.0", "::", "224.0.0.1", "ff02::1", "169.254.169.254", "::1%lo", "fe80::1%eth0"} {
		require.Error(t, dev.Check(netip.MustParseAddr(a)), "never, not even in the dev stack: %s", a)
	}
	err := Check(netip.MustParseAddr("64:ff9b::7f00:1"))
	require.ErrorContains(t, err, "NAT64", "the refusal names the range")
}

// TestAllowAdmitsTheNamedRangesOnly: an operator's Allow admits exactly its
// ranges, under the production policy, and nothing it could be tricked into
// widening: zones, invalid addresses and localhost names stay refused.
func TestAllowAdmitsTheNamedRangesOnly(t *testing.T) {
	t.Parallel()
	p := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("::1/128")}}
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.2", true},
		{"::ffff:127.0.0.2", true}, // judged as the IPv4 address it carries
		{"127.0.0.1", false},
		{"127.0.0.3", false},
		{"::1", true},
		{"::1%lo", false},
		{"169.254.169.254", false},
	} {
		err := p.Check(netip.MustParseAddr(tc.addr))
		require.Equal(t, tc.allowed, err == nil, "%s: %v", tc.addr, err)
	}
	require.Error(t, Policy{Allow: []netip.Prefix{netip.MustParsePrefix("::/0"), netip.MustParsePrefix("0.0.0.0/0")}}.Check(netip.Addr{}))
	// As documented: a mapped prefix admits nothing, since addresses are
	// unmapped before they are compared.
	require.Error(t, Policy{Allow: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.2/128")}}.Check(netip.MustParseAddr("127.0.0.2")))

	require.NoError(t, p.CheckHost("127.0.0.2"))
	require.NoError(t, p.CheckHost("[::1]"))
	require.NoError(t, p.CheckHost("0x7f000002"), "every literal form of an allowed address")
	for _, h := range []string{"127.0.0.1", "[::1%lo]", "::1%25lo", "localhost", "media.localhost"} {
		require.ErrorIs(t, p.CheckHost(h), ErrAddressNotAllowed, h)
	}
	wide := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	require.ErrorIs(t, wide.CheckHost("localhost"), ErrAddressNotAllowed, "localhost names follow AllowPrivate, not Allow")
	require.NoError(t, Policy{AllowPrivate: true}.CheckHost("localhost"))
}

// TestTableCoversTheStandardLibrarysClasses: whatever net/netip calls
// loopback, private, link-local, multicast, unspecified or not global
// unicast, the table refuses — over a million random addresses, biased
// towards the special blocks.
func TestTableCoversTheStandardLibrarysClasses(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1 << 20 {
		var a netip.Addr
		if i%2 == 0 {
			var b [4]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			a = netip.AddrFrom4(b)
		} else {
			var b [16]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			// Aim at the interesting first bytes often.
			switch r.IntN(8) {
			case 0:
				b[0], b[1] = 0xfe, 0x80|byte(r.IntN(0x40))
			case 1:
				b[0] = 0xff
			case 2:
				b[0] = 0xfc | byte(r.IntN(2))
			case 3:
				b = [16]byte{}
				b[15] = byte(r.IntN(3))
			case 4:
				b[0], b[1] = 0x20|byte(r.IntN(0x20)), byte(r.Uint32())
			}
			a = netip.AddrFrom16(b)
		}
		special := a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
			a.IsUnspecified() || a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast() || !a.IsGlobalUnicast()
		if special {
			require.Error(t, Check(a), a.String())
		}
		if a.Is6() && !netip.MustParsePrefix("2000::/3").Contains(a) && !a.Is4In6() {
			require.Error(t, Check(a), "outside global unicast: %s", a)
		}
	}
}

func TestParseIPv4Loose(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"127.1": "127.0.0.1", "127.0.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "10.0x10000": "10.1.0.0",
		"4294967295": "255.255.255.255", "0": "0.0.0.0", "00": "0.0.0.0",
	} {
		got, ok := parseIPv4Loose(in)
		require.True(t, ok, in)
		require.Equal(t, want, got.String(), in)
	}
	for _, in := range []string{"", ".", "1.", "1..1", "4294967296", "256.1", "1.2.3.256", "1.2.65536", "08", "0x1g", "1.2.3.4.5", "a", "example.com", "-1"} {
		_, ok := parseIPv4Loose(in)
		require.False(t, ok, in)
	}
}
