package clientaddr

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveTrustsForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	trusted, err := ParsePrefixes(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8,::ffff:172.16.0.0/108")
	require.NoError(t, err)
	r := New(trusted)
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy, no header", "203.0.113.9", nil, "203.0.113.9"},
		{"an untrusted peer's header is ignored", "203.0.113.9", []string{"198.51.100.1"}, "203.0.113.9"},
		{"a trusted proxy speaks for its client", "10.1.2.3", []string{"198.51.100.1"}, "198.51.100.1"},
		{"the right-most untrusted hop, not the client's claim", "10.1.2.3", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops are skipped", "10.1.2.3", []string{"1.1.1.1, 198.51.100.1, 10.9.9.9, 192.0.2.7"}, "198.51.100.1"},
		{"headers in order, joined", "10.1.2.3", []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"all trusted: the farthest", "10.1.2.3", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"a trusted proxy with no header", "10.1.2.3", nil, "10.1.2.3"},
		{"garbage stops the walk at the last vouched hop", "10.1.2.3", []string{"1.1.1.1, nonsense, 10.0.0.5"}, "10.0.0.5"},
		{"ports and brackets", "10.1.2.3", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"port on IPv4", "10.1.2.3", []string{"198.51.100.1:5555"}, "198.51.100.1"},
		{"mapped peer is unmapped", "::ffff:10.1.2.3", []string{"198.51.100.1"}, "198.51.100.1"},
		{"mapped trusted prefix", "172.16.0.9", []string{"198.51.100.1"}, "198.51.100.1"},
		{"zoned peer loses its zone", "fd00::1%eth0", []string{"2001:db8::7"}, "2001:db8::7"},
		{"mapped hop is unmapped", "10.1.2.3", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
	} {
		peer := netip.MustParseAddr(tc.peer)
		require.Equal(t, tc.want, r.Resolve(peer, tc.xff).String(), tc.name)
	}
	require.Equal(t, "198.51.100.1", New(nil).Resolve(netip.MustParseAddr("198.51.100.1"), []string{"10.0.0.1"}).String(),
		"no trusted proxies: the header is never read")
}

func TestParsePrefixesRefusesNonsense(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,nope"} {
		_, err := ParsePrefixes(bad)
		require.Error(t, err, bad)
	}
	p, err := ParsePrefixes("")
	require.NoError(t, err)
	require.Empty(t, p)
}

func TestBucketGroupsAnIPv6SubscriberByItsSlash64(t *testing.T) {
	t.Parallel()
	require.Equal(t, "2001:db8:1:2::/64", Bucket(netip.MustParseAddr("2001:db8:1:2:aaaa::1")))
	require.Equal(t, Bucket(netip.MustParseAddr("2001:db8:1:2::1")), Bucket(netip.MustParseAddr("2001:db8:1:2:ffff:ffff:ffff:ffff")))
	require.Equal(t, "198.51.100.1", Bucket(netip.MustParseAddr("::ffff:198.51.100.1")))
}

// TestPeerReadsRemoteAddr: one client has one form whatever the listener
// wrote — mapped IPv4 unmapped, a zone dropped — and no address is zero.
func TestPeerReadsRemoteAddr(t *testing.T) {
	t.Parallel()
	require.Equal(t, netip.MustParseAddr("198.51.100.1"), Peer("198.51.100.1:4000"))
	require.Equal(t, netip.MustParseAddr("198.51.100.1"), Peer("[::ffff:198.51.100.1]:4000"))
	require.Equal(t, netip.MustParseAddr("fe80::1"), Peer("[fe80::1%eth0]:4000"))
	require.False(t, Peer("@unix").IsValid())
	require.False(t, Peer("").IsValid())
}
