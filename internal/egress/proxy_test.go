package egress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func startProxy(t *testing.T, cfg ProxyConfig) *Proxy {
	t.Helper()
	p, err := StartProxy(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// echo is a TCP server that counts the connections it accepts and echoes
// what it reads: a tunnel's target.
type echo struct {
	ln      net.Listener
	accepts atomic.Int64
}

func startEcho(t *testing.T, addr string) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil && strings.HasPrefix(addr, "127.0.0.2:") {
		t.Skipf("this host has no 127.0.0.2: %v", err)
	}
	require.NoError(t, err)
	e := &echo{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepts.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return e
}

func (e *echo) port() string {
	_, port, _ := net.SplitHostPort(e.ln.Addr().String())
	return port
}

// listen127002 listens on 127.0.0.2, an address the tests' policies admit
// through Allow only.
func listen127002(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("this host has no 127.0.0.2: %v", err)
	}
	return ln
}

var allow127002 = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}

// exchange sends raw to the proxy on a new connection and reads one
// response. For a CONNECT answered 200 the connection and its reader carry
// the tunnel on; otherwise both are closed.
func exchange(t *testing.T, p *Proxy, raw string) (*http.Response, string, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second))) // a hang fails the test, not the run
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	req := &http.Request{Method: strings.Fields(raw)[0]}
	resp, err := http.ReadResponse(br, req)
	require.NoError(t, err)
	if req.Method == http.MethodConnect && resp.StatusCode == http.StatusOK {
		require.NoError(t, conn.SetDeadline(time.Time{}))
		return resp, "", conn, br
	}
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	conn.Close()
	return resp, string(body), nil, nil
}

func connectReq(target string) string {
	return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"
}

func getReq(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	return "GET " + rawURL + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
}

// ping sends a line through a tunnel to an echo target and reads it back.
func ping(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.WriteString(conn, "ping\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ping\n", line)
	require.NoError(t, conn.SetDeadline(time.Time{}))
}

// requireRefused checks a refusal as the client and core see it.
func requireRefused(t *testing.T, p *Proxy, resp *http.Response, body, what string) {
	t.Helper()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s: %s", what, body)
	require.True(t, strings.HasPrefix(body, "ytcaption egress: address not allowed: "), "%s: %q", what, body)
	require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	err := p.Refused()
	require.ErrorIs(t, err, ErrAddressNotAllowed, what)
	var ae *AddressError
	require.ErrorAs(t, err, &ae, what)
}

// TestProxyRefusesConnectToRefusedTargets: a CONNECT to any form of a
// loopback target is answered 403 and the target sees no connection —
// literals, zones, localhost names, and a name whose DNS answers loopback.
// The same CONNECT under the dev policy reaches it: the count of zero is the
// policy's doing.
func TestProxyRefusesConnectToRefusedTargets(t *testing.T) {
	t.Parallel()
	target := startEcho(t, "127.0.0.1:0")
	port := target.port()
	resolver := loopbackResolver(t)
	for _, form := range []string{
		"127.0.0.1:" + port,
		"[::1]:" + port,
		"[::1%25lo]:" + port,
		"127.0.0.1%25lo:" + port,
		"[::ffff:127.0.0.1]:" + port,
		"2130706433:" + port,
		"127.1:" + port,
		"0.0.0.0:" + port,
		"localhost:" + port,
		"rebind.example:" + port,
		"169.254.169.254:80",
	} {
		p := startProxy(t, ProxyConfig{Resolver: resolver})
		resp, body, _, _ := exchange(t, p, connectReq(form))
		requireRefused(t, p, resp, body, form)
		require.ErrorContains(t, p.Refused(), "CONNECT ")
	}
	// A raw "%" that is no escape is a malformed request to net/http.
	p := startProxy(t, ProxyConfig{Resolver: resolver})
	resp, _, _, _ := exchange(t, p, connectReq("[::1%lo]:"+port))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Zero(t, target.accepts.Load(), "a refused CONNECT reached the target")

	dev := startProxy(t, ProxyConfig{Policy: Policy{AllowPrivate: true}, Resolver: resolver})
	resp, _, conn, br := exchange(t, dev, connectReq("rebind.example:"+port))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ping(t, conn, br)
	require.Equal(t, int64(1), target.accepts.Load())
	require.NoError(t, dev.Refused())
}

// TestProxyRefusesPlainHTTPToRefusedTargets: the same for plain-HTTP
// requests in absolute form, sent by a real HTTP client configured with the
// proxy, as yt-dlp and ffmpeg are.
func TestProxyRefusesPlainHTTPToRefusedTargets(t *testing.T) {
	t.Parallel()
	c := startCanary(t)
	resolver := loopbackResolver(t)
	forms := []string{
		"http://127.0.0.1:" + c.port + "/a.wav",
		"http://[::1]:" + c.port + "/",
		"http://[::1%25lo]:" + c.port + "/a.wav",
		"http://0x7f000001:" + c.port + "/",
		"http://localhost:" + c.port + "/",
		"http://rebind.example:" + c.port + "/",
		"http://[::ffff:127.0.0.1]:" + c.port + "/",
		"http://[64:ff9b::7f00:1]:" + c.port + "/",
	}
	for _, form := range forms {
		p := startProxy(t, ProxyConfig{Resolver: resolver})
		resp, body, _, _ := exchange(t, p, getReq(form))
		requireRefused(t, p, resp, body, form)
	}
	require.Zero(t, c.hits.Load(), "a refused request reached the canary")

	dev := startProxy(t, ProxyConfig{Policy: Policy{AllowPrivate: true}, Resolver: resolver})
	resp, body, _, _ := exchange(t, dev, getReq("http://rebind.example:"+c.port+"/"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "internal secret", body)
	require.Equal(t, int64(1), c.hits.Load())
}

// TestProxyServesAllowedTargets: with 127.0.0.2 allowed (and 127.0.0.1 not),
// a TLS server is reached through a CONNECT tunnel and a plain one by
// forwarding — hop-by-hop and Proxy-* headers dropped, Host kept — and a
// redirect to a refused address is returned to the client, whose next
// request the proxy refuses.
func TestProxyServesAllowedTargets(t *testing.T) {
	t.Parallel()
	c := startCanary(t)
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "over TLS")
	}))
	secure.Listener.Close()
	secure.Listener = listen127002(t)
	secure.StartTLS()
	t.Cleanup(secure.Close)

	type seen struct {
		host   string
		header http.Header
	}
	requests := make(chan seen, 10)
	plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests <- seen{r.Host, r.Header.Clone()}
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.1:"+c.port+"/a.wav", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "plain "+r.URL.RequestURI())
	}))
	plain.Listener.Close()
	plain.Listener = listen127002(t)
	plain.Start()
	t.Cleanup(plain.Close)

	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}})
	proxyURL, err := url.Parse(p.URL())
	require.NoError(t, err)
	transport := secure.Client().Transport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyURL(proxyURL)
	transport.TLSClientConfig.ServerName = "example.com" // the test certificate names 127.0.0.1, not .2
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	resp, err := client.Get(secure.URL + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "over TLS", string(body))

	req, err := http.NewRequest(http.MethodGet, plain.URL+"/media?x=1", nil)
	require.NoError(t, err)
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("Proxy-Foo", "for the proxy")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "one hop only")
	req.Header.Set("X-End", "end to end")
	resp, err = client.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "plain /media?x=1", string(body))
	got := <-requests
	require.Equal(t, strings.TrimPrefix(plain.URL, "http://"), got.host)
	require.Empty(t, got.header.Get("Proxy-Authorization"))
	require.Empty(t, got.header.Get("Proxy-Foo"))
	require.Empty(t, got.header.Get("X-Hop"))
	require.Equal(t, "end to end", got.header.Get("X-End"))

	// The proxy hands the redirect back; the client's next request is
	// checked like any other.
	noFollow := &http.Client{Transport: transport, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(plain.URL + "/redirect")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.NoError(t, p.Refused())
	resp, err = client.Get(plain.URL + "/redirect")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", body)
	require.ErrorIs(t, p.Refused(), ErrAddressNotAllowed)
	require.ErrorContains(t, p.Refused(), "127.0.0.1")
	require.Zero(t, c.hits.Load())
}

// TestProxyAnswersOnlyProxyRequests: a bare request, https in absolute form
// (a client must CONNECT for it), a CONNECT without a port and an upgrade
// are answered 400, and nothing is recorded as a refusal.
func TestProxyAnswersOnlyProxyRequests(t *testing.T) {
	t.Parallel()
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}})
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n",
		"POST /upload HTTP/1.1\r\nHost: 127.0.0.2\r\nContent-Length: 0\r\n\r\n",
		"GET https://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n",
		"GET ftp://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n",
		connectReq("127.0.0.2"),
		"GET http://127.0.0.2/ws HTTP/1.1\r\nHost: 127.0.0.2\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	} {
		resp, body, _, _ := exchange(t, p, raw)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%q: %s", raw, body)
	}
	require.NoError(t, p.Refused())
}

// upstream is a stand-in outbound proxy. It records what it is asked for;
// it routes every tunnel to one backend (the test has no other host to
// reach) and answers plain requests itself.
type upstream struct {
	srv     *httptest.Server
	status  int // answer to CONNECT when not 200
	backend string

	mu      sync.Mutex
	targets []string // CONNECT targets and absolute URLs' hosts
	hosts   []string // Host headers of plain requests
}

func startUpstream(t *testing.T, status int, backend string) *upstream {
	t.Helper()
	u := &upstream{status: status, backend: backend}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		if r.Method == http.MethodConnect {
			u.targets = append(u.targets, r.Host)
		} else {
			u.targets = append(u.targets, r.URL.Host)
			u.hosts = append(u.hosts, r.Host)
		}
		u.mu.Unlock()
		if u.status != 0 {
			http.Error(w, "slow down", u.status)
			return
		}
		if r.Method != http.MethodConnect {
			_, _ = io.WriteString(w, "via upstream")
			return
		}
		back, err := net.Dial("tcp", u.backend)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer back.Close()
		client, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer client.Close()
		if _, err := io.WriteString(client, "HTTP/1.1 200 OK\r\n\r\n"); err != nil {
			return
		}
		go func() { _, _ = io.Copy(back, buf.Reader); back.Close() }()
		_, _ = io.Copy(client, back)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) seen() ([]string, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.targets...), append([]string(nil), u.hosts...)
}

// requireIPPort fails unless every target is an IP address and port: the
// upstream must never get a name it could resolve to somewhere else.
func requireIPPort(t *testing.T, targets []string) {
	t.Helper()
	require.NotEmpty(t, targets)
	for _, target := range targets {
		_, err := netip.ParseAddrPort(target)
		require.NoError(t, err, "the upstream was asked for %q", target)
	}
}

// TestProxyThroughAnUpstreamAsksForCheckedAddresses: with an outbound HTTP
// proxy, names are resolved and checked here and the upstream is asked for
// the checked IP:port — for CONNECT and for plain requests, whose Host
// header keeps the name. A refused target never reaches the upstream.
func TestProxyThroughAnUpstreamAsksForCheckedAddresses(t *testing.T) {
	t.Parallel()
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "backend "+r.Host)
	}))
	t.Cleanup(backend.Close)
	up := startUpstream(t, 0, backend.Listener.Addr().String())
	upURL, err := url.Parse(up.srv.URL)
	require.NoError(t, err)
	resolver := loopbackResolver(t) // example.com is loopback here, which the dev policy admits
	p := startProxy(t, ProxyConfig{Policy: Policy{AllowPrivate: true}, Resolver: resolver, Upstream: upURL})

	proxyURL, err := url.Parse(p.URL())
	require.NoError(t, err)
	transport := backend.Client().Transport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyURL(proxyURL)
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	resp, err := client.Get("https://example.com:8443/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "backend example.com:8443", string(body))

	resp, err = client.Get("http://example.com:8080/a.mp4")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "via upstream", string(body))

	targets, hosts := up.seen()
	requireIPPort(t, targets)
	require.Len(t, targets, 2)
	require.Contains(t, targets[0], ":8443")
	require.Contains(t, targets[1], ":8080")
	require.Equal(t, targets[1:], hosts, "the Host header names no name either")
	require.NoError(t, p.Refused())

	strict := startProxy(t, ProxyConfig{Resolver: resolver, Upstream: upURL})
	for _, raw := range []string{connectReq("example.com:443"), getReq("http://example.com/"), connectReq("127.0.0.1:443")} {
		resp, body, _, _ := exchange(t, strict, raw)
		requireRefused(t, strict, resp, body, raw)
	}
	after, _ := up.seen()
	require.Len(t, after, 2, "a refused target reached the upstream")
}

// TestProxyReportsUpstreamRefusalsAsBadGateway: an upstream that refuses a
// CONNECT (429 here) is the client's 502, its status in the body, and not a
// policy refusal.
func TestProxyReportsUpstreamRefusalsAsBadGateway(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, http.StatusTooManyRequests, "")
	upURL, err := url.Parse(up.srv.URL)
	require.NoError(t, err)
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}, Upstream: upURL})
	resp, body, _, _ := exchange(t, p, connectReq("127.0.0.2:443"))
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Contains(t, body, "429 Too Many Requests")
	require.NoError(t, p.Refused())
	targets, _ := up.seen()
	require.Equal(t, []string{"127.0.0.2:443"}, targets)
}

// socksUpstream is a stand-in SOCKS5 proxy (RFC 1928, no authentication,
// CONNECT only) that records the address type of every request and routes
// it to one backend.
type socksUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	types []byte // ATYP: 1 IPv4, 3 a name, 4 IPv6
}

func startSOCKS(t *testing.T, backend string) *socksUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &socksUpstream{ln: ln}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c, backend) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

func (s *socksUpstream) serve(c net.Conn, backend string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return
	}
	if _, err := io.ReadFull(r, make([]byte, hdr[1])); err != nil { // the methods offered
		return
	}
	if _, err := c.Write([]byte{5, 0}); err != nil {
		return
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(r, req); err != nil {
		return
	}
	var n int
	switch req[3] {
	case 1:
		n = 4
	case 4:
		n = 16
	case 3:
		l, err := r.ReadByte()
		if err != nil {
			return
		}
		n = int(l)
	}
	if _, err := io.ReadFull(r, make([]byte, n+2)); err != nil {
		return
	}
	s.mu.Lock()
	s.types = append(s.types, req[3])
	s.mu.Unlock()
	back, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer back.Close()
	if _, err := c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil { // bound to 0.0.0.0:0
		return
	}
	_ = c.SetDeadline(time.Time{})
	go func() { _, _ = io.Copy(back, r); back.Close() }()
	_, _ = io.Copy(c, back)
}

// TestProxyThroughSOCKSAsksForAddresses: a socks5h upstream would resolve
// a name itself; it is given only the checked address, for tunnels and
// plain requests alike.
func TestProxyThroughSOCKSAsksForAddresses(t *testing.T) {
	t.Parallel()
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "backend "+r.Host)
	}))
	t.Cleanup(backend.Close)
	plainBackend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "plain backend "+r.Host)
	}))
	t.Cleanup(plainBackend.Close)
	tlsSOCKS := startSOCKS(t, backend.Listener.Addr().String())
	plainSOCKS := startSOCKS(t, plainBackend.Listener.Addr().String())
	resolver := loopbackResolver(t)

	for _, tc := range []struct {
		socks *socksUpstream
		url   string
		want  string
	}{
		{tlsSOCKS, "https://example.com:8443/", "backend example.com:8443"},
		{plainSOCKS, "http://example.com:8080/", "plain backend example.com:8080"},
	} {
		upURL, err := url.Parse("socks5h://" + tc.socks.ln.Addr().String())
		require.NoError(t, err)
		p := startProxy(t, ProxyConfig{Policy: Policy{AllowPrivate: true}, Resolver: resolver, Upstream: upURL})
		proxyURL, err := url.Parse(p.URL())
		require.NoError(t, err)
		transport := backend.Client().Transport.(*http.Transport).Clone()
		transport.Proxy = http.ProxyURL(proxyURL)
		client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
		resp, err := client.Get(tc.url)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		transport.CloseIdleConnections()
		require.Equal(t, tc.want, string(body))
		tc.socks.mu.Lock()
		types := append([]byte(nil), tc.socks.types...)
		tc.socks.mu.Unlock()
		require.NotEmpty(t, types)
		require.NotContains(t, types, byte(3), "the SOCKS upstream was given a name")
	}
}

// TestProxyBoundsRequestHeaders: a header flood is cut at MaxHeaderBytes
// (net/http stops reading there and answers 431), not buffered.
func TestProxyBoundsRequestHeaders(t *testing.T) {
	t.Parallel()
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		// 1 MiB of header, 64 times the limit; the write fails once the
		// proxy hangs up.
		_, _ = io.WriteString(conn, "GET http://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\n")
		line := "X-Flood: " + strings.Repeat("a", 1000) + "\r\n"
		for range 1 << 10 {
			if _, err := io.WriteString(conn, line); err != nil {
				return
			}
		}
	})
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	} else {
		require.False(t, isTimeout(err), "the proxy kept reading: %v", err)
	}
	conn.Close()
}

// TestProxyCutsSlowHeaders: a client that never finishes its header
// (slowloris) is disconnected at HeaderTimeout. Without the bound the read
// below runs into the test's own deadline and fails.
func TestProxyCutsSlowHeaders(t *testing.T) {
	t.Parallel()
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}, HeaderTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, "CONNECT 127.0.0.2:443 HTTP/1.1\r\nHost: 127.0.0.2:443\r\n")
	require.NoError(t, err)
	_, err = io.ReadAll(conn) // whatever it says, if anything, then the end
	require.False(t, isTimeout(err), "the connection was left open: %v", err)
}

// TestProxyClosesIdleTunnels: a tunnel where neither side sends anything is
// closed after IdleTimeout; the target sees the end too.
func TestProxyClosesIdleTunnels(t *testing.T) {
	t.Parallel()
	target := startEcho(t, "127.0.0.2:0")
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}, IdleTimeout: 50 * time.Millisecond})
	resp, _, conn, br := exchange(t, p, connectReq("127.0.0.2:"+target.port()))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	ping(t, conn, br)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := io.ReadAll(br)
	require.False(t, isTimeout(err), "the idle tunnel was left open: %v", err)
}

// TestProxyLimitsConnections: with MaxConns client connections open, the
// next is not served until one closes.
func TestProxyLimitsConnections(t *testing.T) {
	t.Parallel()
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}, MaxConns: 2})
	addr := strings.TrimPrefix(p.URL(), "http://")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = io.WriteString(c, "GET http://127.0.0.2/ HTTP/1.1\r\n") // half a header: the slot stays taken
		require.NoError(t, err)
		held = append(held, c)
	}
	third, err := net.Dial("tcp", addr) // the kernel's backlog takes it; the proxy does not accept it
	require.NoError(t, err)
	t.Cleanup(func() { third.Close() })
	_, err = io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	// No answer while both slots are held. The wait can only make this
	// test pass wrongly (on a slow machine), never fail wrongly.
	require.NoError(t, third.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = third.Read(make([]byte, 1))
	require.True(t, isTimeout(err), "answered beyond MaxConns: %v", err)

	held[0].Close()
	require.NoError(t, third.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// TestProxyCloseEndsEverything: Close with tunnels open, a forwarded request
// in flight and a client mid-header returns, every client sees its
// connection end, and no goroutine is left (checked here and by TestMain).
// Not parallel, so the leak check sees only this test's goroutines.
func TestProxyCloseEndsEverything(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	target := startEcho(t, "127.0.0.2:0")
	inFlight := make(chan struct{})
	stuck := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "first bytes\n")
		http.NewResponseController(w).Flush()
		close(inFlight)
		<-r.Context().Done() // until the proxy gives up on it
	}))
	stuck.Listener.Close()
	stuck.Listener = listen127002(t)
	stuck.Start()
	t.Cleanup(stuck.Close)

	p, err := StartProxy(ProxyConfig{Policy: Policy{Allow: allow127002}})
	require.NoError(t, err)
	type client struct {
		conn net.Conn
		r    io.Reader
	}
	var clients []client
	for range 3 {
		resp, _, conn, br := exchange(t, p, connectReq("127.0.0.2:"+target.port()))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		ping(t, conn, br)
		clients = append(clients, client{conn, br})
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.WriteString(conn, getReq(stuck.URL+"/"))
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	<-inFlight
	clients = append(clients, client{conn, resp.Body})
	half, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { half.Close() })
	_, err = io.WriteString(half, "GET http://127.0.0.2/ HTTP/1.1\r\n")
	require.NoError(t, err)
	clients = append(clients, client{half, half})

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	require.NoError(t, p.Close(), "Close twice")
	for i, c := range clients {
		require.NoError(t, c.conn.SetDeadline(time.Now().Add(10*time.Second)))
		_, err := io.ReadAll(c.r)
		require.False(t, isTimeout(err), "client %d was left open: %v", i, err)
	}
}

// TestProxyKeepsOneWayTunnels: a download sends nothing from the client for
// far longer than IdleTimeout while the target streams; the tunnel must
// stay. The target sends a chunk each time the test asks (out of band, so
// the client stays silent) for four idle periods. Only a stall longer than
// IdleTimeout between two chunks could fail it wrongly.
func TestProxyKeepsOneWayTunnels(t *testing.T) {
	t.Parallel()
	ln := listen127002(t)
	more := make(chan bool)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for <-more {
			if _, err := io.WriteString(c, "chunk\n"); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { close(more) })
	const idle = 300 * time.Millisecond
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}, IdleTimeout: idle})
	resp, _, conn, br := exchange(t, p, connectReq(ln.Addr().String()))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	for start := time.Now(); time.Since(start) < 4*idle; {
		more <- true
		line, err := br.ReadString('\n')
		require.NoError(t, err, "the tunnel was closed while the target was sending")
		require.Equal(t, "chunk\n", line)
	}
}

// TestProxyTunnelsBytesSentWithTheConnect: a client may send its first
// bytes (a TLS hello) right behind the CONNECT header, before the answer;
// they reach the target first.
func TestProxyTunnelsBytesSentWithTheConnect(t *testing.T) {
	t.Parallel()
	target := startEcho(t, "127.0.0.2:0")
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}})
	resp, _, conn, br := exchange(t, p, connectReq("127.0.0.2:"+target.port())+"early\n")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "early\n", line)
	ping(t, conn, br)
}

// TestProxyBoundsResponseHeaders: a target that answers with an endless
// header (a page's media server is a stranger's) is cut off at 1 MiB with a
// 502, not read into memory until it stops.
func TestProxyBoundsResponseHeaders(t *testing.T) {
	t.Parallel()
	ln := listen127002(t)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Flood: " + strings.Repeat("a", 1000) + "\r\n"
		for range 8 << 10 { // 8 MiB of header: 8 times the bound, under net/http's own 10 MiB
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
		_, _ = io.WriteString(c, "Content-Length: 2\r\n\r\nok")
	})
	p := startProxy(t, ProxyConfig{Policy: Policy{Allow: allow127002}})
	resp, _, _, _ := exchange(t, p, getReq("http://"+ln.Addr().String()+"/media"))
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
}
