package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// canary is a server on loopback, standing in for an internal service: it
// must never see a request from a client under the production policy. It
// listens on 127.0.0.1 and, when the host has IPv6, on [::1] at the same port.
type canary struct {
	hits atomic.Int64
	port string
	v6   bool
}

func startCanary(t *testing.T) *canary {
	t.Helper()
	c := &canary{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		_, _ = w.Write([]byte("internal secret"))
	})
	for range 20 {
		ln4, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		_, port, _ := net.SplitHostPort(ln4.Addr().String())
		ln6, err := net.Listen("tcp", "[::1]:"+port)
		if err != nil && hasIPv6Loopback() {
			ln4.Close() // the port is taken on ::1: try another
			continue
		}
		for _, ln := range []net.Listener{ln4, ln6} {
			if ln == nil {
				continue
			}
			srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
			srv.Start()
			t.Cleanup(srv.Close)
		}
		c.port, c.v6 = port, ln6 != nil
		return c
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return nil
}

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// loopbackResolver is a DNS server that answers every name with loopback —
// the worst a resolver can do: it stands in for DNS rebinding, for names an
// attacker controls, and for glibc's reading of 2130706433 or 127.1 as
// 127.0.0.1. The contract is RFC 1035's wire format, A and AAAA only.
func loopbackResolver(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := answerLoopback(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, addr)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func answerLoopback(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	resp := append([]byte(nil), q[:i+5]...)
	resp[2] = 0x80 | q[2]&0x01 // a response; recursion desired as asked
	resp[3] = 0x80             // recursion available, no error
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[6:], 0)
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	var rdata []byte
	switch qtype {
	case 1: // A
		rdata = []byte{127, 0, 0, 1}
	case 28: // AAAA
		rdata = net.IPv6loopback
	default:
		return resp
	}
	binary.BigEndian.PutUint16(resp[6:], 1)
	resp = append(resp, 0xc0, 0x0c, byte(qtype>>8), byte(qtype), 0, 1, 0, 0, 0, 0, 0, byte(len(rdata)))
	return append(resp, rdata...)
}

// canaryForms are the URL forms of the canary; the v6 ones only when it
// listens on ::1. Some reach it only through a resolver that turns them into
// loopback (loopbackResolver), some never reach it here (NAT64, 6to4 and
// IPv4-compatible need a gateway this host does not have) and are there to
// be refused all the same.
func canaryForms(c *canary) []string {
	p := c.port
	forms := []string{
		"http://127.0.0.1:" + p + "/a.wav",
		"http://127.1:" + p + "/",
		"http://127.0.1:" + p + "/",
		"http://2130706433:" + p + "/",
		"http://0x7f000001:" + p + "/",
		"http://0177.0.0.1:" + p + "/",
		"http://127.0.0.1.:" + p + "/",
		"http://localhost:" + p + "/",
		"http://localhost.:" + p + "/",
		"http://LOCALHOST:" + p + "/",
		"http://media.localhost:" + p + "/",
		"http://good.example@127.0.0.1:" + p + "/",
		"http://[::ffff:127.0.0.1]:" + p + "/",
		"http://[::ffff:7f00:1]:" + p + "/",
		"http://0.0.0.0:" + p + "/",
		"http://0:" + p + "/",
		"http://127.0.0.1%25lo:" + p + "/",
		"http://rebind.example:" + p + "/",
		"http://１２７.０.０.１:" + p + "/",
		"http://ｌｏｃａｌｈｏｓｔ:" + p + "/",
		"http://[::127.0.0.1]:" + p + "/",
		"http://[64:ff9b::7f00:1]:" + p + "/",
		"http://[2002:7f00:1::]:" + p + "/",
	}
	if c.v6 {
		forms = append(forms,
			"http://[::1]:"+p+"/",
			"http://[::1%25lo]:"+p+"/a.wav",
			"http://[0:0:0:0:0:0:0:1]:"+p+"/",
			"http://[::]:"+p+"/",
		)
	}
	return forms
}

func get(c *http.Client, raw string) error { return getWithin(c, raw, 5*time.Second) }

func getWithin(c *http.Client, raw string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// TestCanarySeesNoRequest is the end-to-end proof: every URL form of a
// loopback server, requested directly and through a redirect from an
// allowed first hop, by a client under the production policy whose
// resolver answers every name with loopback. First an unchecked client with
// the same resolver shows which forms do reach the canary on this host.
func TestCanarySeesNoRequest(t *testing.T) {
	t.Parallel()
	c := startCanary(t)
	resolver := loopbackResolver(t)
	forms := canaryForms(c)

	// The dial has its own timeout: the transport lets a dial outlive its
	// cancelled request, and one to a NAT64 or 6to4 form may hang until the
	// kernel gives up, long after the package's leak check.
	plain := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Resolver: resolver, Timeout: time.Second}).DialContext}}
	var reaching []string
	for _, f := range forms {
		before := c.hits.Load()
		_ = getWithin(plain, f, time.Second) // NAT64 and 6to4 forms go nowhere here: do not wait long
		if c.hits.Load() > before {
			reaching = append(reaching, f)
		}
	}
	t.Logf("%d of %d forms reach the canary without the policy: %v", len(reaching), len(forms), reaching)
	require.Contains(t, reaching, forms[0], "the canary must be reachable, or the test proves nothing")
	require.Contains(t, reaching, "http://0x7f000001:"+c.port+"/", "names go through the loopback resolver")
	require.Contains(t, reaching, "http://[::ffff:127.0.0.1]:"+c.port+"/")
	require.Contains(t, reaching, "http://0.0.0.0:"+c.port+"/")
	base := c.hits.Load()

	client := NewClient(Policy{}, ClientConfig{Timeout: 5 * time.Second, Resolver: resolver})
	for _, f := range forms {
		err := get(client, f)
		require.Error(t, err, f)
		if contains(reaching, f) {
			require.ErrorIs(t, err, ErrAddressNotAllowed, f)
		}
	}
	require.Equal(t, base, c.hits.Load(), "direct requests reached the canary")

	// Redirects: the first hop is a loopback server too, admitted by a
	// dialer that lets exactly its address through unchecked; every later
	// hop goes through the policy's own dialer.
	var hop1 atomic.Int64
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hop1.Add(1)
		to := r.URL.Query().Get("to")
		if n, _ := strconv.Atoi(r.URL.Query().Get("hops")); n > 0 {
			// Bounce through the allowed host first: the refusal must hold
			// on a later hop too.
			to = "http://" + r.Host + "/?hops=" + strconv.Itoa(n-1) + "&to=" + url.QueryEscape(to)
		}
		http.Redirect(w, r, to, http.StatusFound)
	}))
	t.Cleanup(public.Close)
	redirecting := NewClient(Policy{}, ClientConfig{Timeout: 5 * time.Second, Resolver: resolver})
	admitFirstHop(redirecting, public.Listener.Addr().String())
	for _, f := range forms {
		for _, hops := range []string{"0", "2"} {
			before := hop1.Load()
			err := get(redirecting, public.URL+"/?hops="+hops+"&to="+url.QueryEscape(f))
			require.Greater(t, hop1.Load(), before, "the first hop is allowed")
			require.ErrorIs(t, err, ErrAddressNotAllowed, "redirect (%s hops first) to %s", hops, f)
		}
	}
	require.Equal(t, base, c.hits.Load(), "a redirect reached the canary")
}

// admitFirstHop lets c request and dial addr without the policy: the
// stand-in for a public server in a test that has only loopback. Every other
// host still goes through the policy's request check and dialer.
func admitFirstHop(c *http.Client, addr string) {
	tr := c.Transport.(*http.Transport)
	checkedReq, checkedDial := tr.Proxy, tr.DialContext
	tr.Proxy = func(req *http.Request) (*url.URL, error) {
		if req.URL.Host == addr {
			return nil, nil
		}
		return checkedReq(req)
	}
	var plain net.Dialer
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		if a == addr {
			return plain.DialContext(ctx, network, a)
		}
		return checkedDial(ctx, network, a)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRedirectToEachRefusedClassIsRefused: a redirect from an allowed first
// hop to each class in the table is refused, before anything is dialled
// (CheckRedirect on the literal) or when it is (Control on the resolved
// address of a name).
func TestRedirectToEachRefusedClassIsRefused(t *testing.T) {
	t.Parallel()
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	t.Cleanup(public.Close)
	client := NewClient(Policy{}, ClientConfig{Timeout: 5 * time.Second, Resolver: loopbackResolver(t)})
	admitFirstHop(client, public.Listener.Addr().String())
	for _, to := range []string{
		"http://0.0.0.0/", "http://10.0.0.1/", "http://100.64.0.1/", "http://127.0.0.1/", "http://169.254.169.254/latest/meta-data/",
		"http://172.16.0.1/", "http://192.0.0.170/", "http://192.0.2.1/", "http://192.31.196.1/", "http://192.52.193.1/",
		"http://192.88.99.1/", "http://192.168.0.1/", "http://192.175.48.1/", "http://198.18.0.1/", "http://198.51.100.1/",
		"http://203.0.113.1/", "http://224.0.0.1/", "http://240.0.0.1/", "http://255.255.255.255/",
		"http://[::]/", "http://[::1]/", "http://[::ffff:10.0.0.1]/", "http://[::10.0.0.1]/", "http://[64:ff9b::a9fe:a9fe]/",
		"http://[64:ff9b:1::1]/", "http://[100::1]/", "http://[2001::1]/", "http://[2001:db8::1]/", "http://[2002:a9fe:a9fe::]/",
		"http://[2620:4f:8000::1]/", "http://[3fff::1]/", "http://[5f00::1]/", "http://[fd00::1]/", "http://[fe80::1]/",
		"http://[fe80::1%25eth0]/", "http://[fec0::1]/", "http://[ff02::1]/", "http://[4000::1]/",
		"http://0xa9fea9fe/", "http://localhost/", "http://internal.example/", // a name resolving to loopback
	} {
		err := get(client, public.URL+"/?to="+url.QueryEscape(to))
		require.ErrorIs(t, err, ErrAddressNotAllowed, to)
	}
}

// TestNamesResolvingToLoopbackAreRefusedWhenDialled: names other than
// localhost are not judged when a request starts, only what they resolve to,
// right before connect — so a name that resolves to loopback (through
// /etc/hosts, or DNS an attacker controls) is refused by the dialer.
func TestNamesResolvingToLoopbackAreRefusedWhenDialled(t *testing.T) {
	t.Parallel()
	c := startCanary(t)
	resolver := loopbackResolver(t)
	type target struct {
		url      string
		resolver *net.Resolver
	}
	targets := []target{
		{"http://rebind.example:" + c.port + "/", resolver},
		{"http://rebind.example.:" + c.port + "/", resolver},
		{"http://internal.corp:" + c.port + "/a.wav", resolver},
	}
	// This host's own name, when /etc/hosts points it at loopback (Debian
	// and most containers do).
	if name, err := os.Hostname(); err == nil {
		if addrs, err := net.DefaultResolver.LookupHost(context.Background(), name); err == nil && len(addrs) > 0 &&
			net.ParseIP(addrs[0]).IsLoopback() && (Policy{}).CheckHost(name) == nil {
			targets = append(targets, target{"http://" + name + ":" + c.port + "/", nil})
		}
	}
	for _, tc := range targets {
		err := get(NewClient(Policy{}, ClientConfig{Resolver: tc.resolver}), tc.url)
		require.ErrorIs(t, err, ErrAddressNotAllowed, tc.url)
		var op *net.OpError
		require.True(t, errors.As(err, &op), "%s: %v", tc.url, err)
		require.Equal(t, "dial", op.Op, "refused when dialled: %v", err)
	}
	require.Zero(t, c.hits.Load())

	// The dev stack's policy lets the same names through: the refusal above
	// is the policy's, not a broken resolver's.
	err := get(NewClient(Policy{AllowPrivate: true}, ClientConfig{Resolver: resolver}), "http://rebind.example:"+c.port+"/")
	require.NoError(t, err)
	require.Equal(t, int64(1), c.hits.Load())
}

// TestLiteralHostsAreRefusedBeforeAnyLookup: a host the policy reads as a
// refused address is refused by the client before it dials or resolves
// anything — even forms the Go resolver would send to DNS as names.
func TestLiteralHostsAreRefusedBeforeAnyLookup(t *testing.T) {
	t.Parallel()
	var lookups atomic.Int64
	counting := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		lookups.Add(1)
		return nil, errors.New("no DNS in this test")
	}}
	client := NewClient(Policy{}, ClientConfig{Resolver: counting})
	for _, raw := range []string{"http://127.0.0.1%25lo:1/", "http://0x7f000001:1/", "http://localhost:1/", "http://media.localhost./",
		"http://[::1%25lo]:1/", "http://127.0.0.1.:1/", "http://0251.0376.0251.0376/"} {
		err := get(client, raw)
		require.ErrorIs(t, err, ErrAddressNotAllowed, raw)
		var op *net.OpError
		require.False(t, errors.As(err, &op), "refused before dialling: %v", err)
	}
	require.Zero(t, lookups.Load())
}

func TestRedirectHopsAndSchemes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ftp":
			http.Redirect(w, r, "ftp://example.com/a", http.StatusFound)
		case r.URL.Path == "/file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/hop/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
			if n == 0 {
				_, _ = w.Write([]byte("ok"))
				return
			}
			http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	dev := Policy{AllowPrivate: true}
	c := NewClient(dev, ClientConfig{MaxRedirects: 3})
	require.NoError(t, get(c, srv.URL+"/hop/3"))
	require.ErrorIs(t, get(c, srv.URL+"/hop/4"), ErrRedirect)
	require.ErrorIs(t, get(c, srv.URL+"/ftp"), ErrRedirect)
	require.ErrorIs(t, get(c, srv.URL+"/file"), ErrRedirect)

	none := NewClient(dev, ClientConfig{MaxRedirects: NoRedirects})
	resp, err := none.Get(srv.URL + "/hop/1")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode, "the redirect itself is the answer")
}
