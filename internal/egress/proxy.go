package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
	"golang.org/x/net/proxy"
)

// ProxyConfig configures StartProxy. The zero value (with the zero Policy)
// is production's.
type ProxyConfig struct {
	Policy Policy
	// Upstream is an optional outbound proxy (http://, https://, socks5://
	// or socks5h://, credentials in its userinfo) that the checked
	// connections go through. It is the operator's, so it is not itself
	// checked against Policy; what it is asked to reach is, and it is
	// always asked for the checked IP address, never a name it could
	// resolve elsewhere.
	Upstream *url.URL
	Resolver *net.Resolver // nil: the system's

	MaxHeaderBytes int           // a request's header; default 16 KiB (net/http allows 4 KiB over it)
	HeaderTimeout  time.Duration // to read a request's header (slowloris); default 10 s
	// IdleTimeout closes a tunnel when neither side has sent anything for
	// about this long, and a kept-alive client connection between
	// requests; default 2 minutes.
	IdleTimeout time.Duration
	MaxConns    int // client connections open at once, tunnels included; default 64; more wait to be accepted
}

// Proxy is an HTTP forward proxy that applies a Policy to every connection a
// client opens through it: CONNECT tunnels and plain-HTTP requests in
// absolute form. It exists for yt-dlp and the ffmpeg it starts, which do
// their own networking and follow whatever pages and manifests say; core
// starts one Proxy per download, points them at it (--proxy and the
// *_proxy variables) and closes it after.
//
// Every target is judged before anything is dialled: its host by CheckHost,
// then every address the name resolves to — one refused address refuses
// the target, because a name that points both outside and inside is the
// shape of an attack. The checked addresses are dialled (never the name
// again, so DNS rebinding has no second lookup to win), and under
// Policy.Control. A refusal is answered 403 with a short plain-text reason
// and kept for Refused.
//
// Any port is allowed: the address is what keeps internal services out of
// reach; the client speaks HTTP or TLS whatever the port, so the port
// cannot make it speak another protocol; and media does live on 8080 and
// other ports.
//
// It listens on 127.0.0.1 only, so only this machine's processes can use
// it, and they can reach no more through it than the Policy allows.
type Proxy struct {
	cfg       ProxyConfig
	ln        net.Listener
	srv       *http.Server
	transport *http.Transport
	forwarder *httputil.ReverseProxy
	ctx       context.Context // done when the proxy closes
	cancel    context.CancelFunc
	served    chan struct{} // closed when srv.Serve returns
	// conns counts client connections from accept until their serving
	// goroutine is done: StateNew adds, StateClosed subtracts, and a
	// tunnel subtracts for its hijacked connection when it ends.
	conns sync.WaitGroup

	mu      sync.Mutex
	refused error

	closeOnce sync.Once
	closeErr  error
}

// StartProxy starts a proxy on an ephemeral port of 127.0.0.1.
func StartProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 16 << 10
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	transport := &http.Transport{
		// Direct: the request's host is already the checked address;
		// Control checks it once more right before connect.
		DialContext:            cfg.Policy.Dialer(cfg.Resolver).DialContext,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  time.Minute,
		MaxResponseHeaderBytes: 1 << 20, // a stranger's server answers
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        cfg.IdleTimeout,
		// Pass the client's Accept-Encoding and the body through as they
		// are: the client decides what it can decode.
		DisableCompression: true,
	}
	if u := cfg.Upstream; u != nil {
		switch u.Scheme {
		case "http", "https":
		case "socks5", "socks5h":
			if _, err := proxy.FromURL(u, proxy.Direct); err != nil {
				return nil, fmt.Errorf("egress proxy upstream: %w", err)
			}
		default:
			return nil, fmt.Errorf("egress proxy upstream: scheme %q is not http, https, socks5 or socks5h", u.Scheme)
		}
		if u.Hostname() == "" {
			return nil, errors.New("egress proxy upstream: no host")
		}
		// The operator's proxy: dialled as configured, not under Policy
		// (it may well sit on a private address).
		transport.Proxy = http.ProxyURL(u)
		transport.DialContext = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("egress proxy listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	discard := log.New(io.Discard, "", 0) // what it would say is about the client, which is told
	p := &Proxy{
		cfg:       cfg,
		ln:        ln,
		transport: transport,
		ctx:       ctx,
		cancel:    cancel,
		served:    make(chan struct{}),
	}
	p.forwarder = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Hop-by-hop headers are gone already; Proxy-* ones are
			// meant for this proxy, not for the server.
			for k := range pr.Out.Header {
				if strings.HasPrefix(k, "Proxy-") {
					delete(pr.Out.Header, k)
				}
			}
			if u := cfg.Upstream; u != nil && (u.Scheme == "http" || u.Scheme == "https") {
				// An HTTP upstream gets the request in absolute form, and
				// net/http writes r.Host there if it is set: clear it so
				// the upstream is asked for the checked address, not a
				// name it would resolve itself. The origin then sees the
				// address as Host (RFC 9112 §3.2.2 has a proxy take Host
				// from the absolute form anyway).
				pr.Out.Host = ""
			}
		},
		Transport:    transport,
		ErrorLog:     discard,
		ErrorHandler: p.fail,
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          discard,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				p.conns.Add(1)
			case http.StateClosed:
				p.conns.Done()
			}
		},
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(netutil.LimitListener(ln, cfg.MaxConns))
	}()
	return p, nil
}

// URL is the proxy's address for --proxy and the *_proxy variables.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Refused returns the first refusal, wrapping its *AddressError, or nil if
// the policy refused nothing. Core maps it to source_forbidden whatever the
// client made of the 403.
func (p *Proxy) Refused() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Close stops the proxy: it closes the listener, every client connection
// and every tunnel, aborts requests in flight, and returns when the
// goroutines serving them are done.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.cancel() // ends tunnels, dials and forwarded requests
		p.closeErr = p.srv.Close()
		<-p.served // no connection is accepted after this, so conns only falls
		p.conns.Wait()
		p.transport.CloseIdleConnections()
	})
	return p.closeErr
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http" && r.URL.Host != "":
		p.forward(w, r)
	default:
		http.Error(w, "ytcaption egress: not a proxy request: want CONNECT host:port or an absolute http:// URL", http.StatusBadRequest)
	}
}

// check judges a target host and returns the addresses to dial, all of
// them allowed.
func (p *Proxy) check(ctx context.Context, host string) ([]netip.Addr, error) {
	if err := p.cfg.Policy.CheckHost(host); err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	resolver := p.cfg.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	for i, a := range addrs {
		if err := p.cfg.Policy.Check(a); err != nil {
			return nil, err
		}
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

// fail answers a request that could not be served: 403 for the policy's
// refusal (kept for Refused), 502 for anything else on the way out.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *AddressError
	if errors.As(err, &ae) {
		p.mu.Lock()
		if p.refused == nil {
			p.refused = fmt.Errorf("egress proxy: %s %s: %w", r.Method, r.Host, err)
		}
		p.mu.Unlock()
		http.Error(w, "ytcaption egress: "+ae.Error(), http.StatusForbidden)
		return
	}
	http.Error(w, "ytcaption egress: "+err.Error(), http.StatusBadGateway)
}

// forward serves a plain-HTTP request in absolute form. The proxy does not
// follow redirects: the client does, and each new request is checked anew.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "" {
		// An upgraded connection would be a tunnel outside the idle bound;
		// clients open websockets with CONNECT.
		http.Error(w, "ytcaption egress: upgrades go through CONNECT", http.StatusBadRequest)
		return
	}
	addrs, err := p.check(r.Context(), r.URL.Hostname())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	port := r.URL.Port()
	if port == "" {
		port = "80"
	}
	// The request goes to the checked address — directly or through the
	// upstream, which then has no name to resolve. r.Host keeps the name
	// the client asked for in the Host header, except through an HTTP
	// upstream (see Rewrite).
	r.URL.Host = net.JoinHostPort(addrs[0].String(), port)
	p.forwarder.ServeHTTP(w, r)
}

// connect serves a CONNECT tunnel.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port == "" {
		http.Error(w, "ytcaption egress: CONNECT wants host:port", http.StatusBadRequest)
		return
	}
	addrs, err := p.check(r.Context(), host)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	target, err := p.dial(r.Context(), addrs, port)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		target.Close()
		http.Error(w, "ytcaption egress: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer p.conns.Done() // a hijacked connection never reaches StateClosed
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		client.Close()
		target.Close()
		return
	}
	// buf.Reader holds what the client sent after the CONNECT header
	// (often its TLS hello): that goes first, then the connection itself.
	// Never read the rest through buf.Reader: it reads through net/http's
	// connection reader, which cancels the request's context on any read
	// error — the idle read timeouts included.
	var fromClient io.Reader = client
	if n := buf.Reader.Buffered(); n > 0 {
		early, _ := buf.Reader.Peek(n)
		fromClient = io.MultiReader(bytes.NewReader(bytes.Clone(early)), client)
	}
	p.tunnel(client, fromClient, target)
}

// dial connects to the first checked address that answers, directly under
// Policy.Control, or through the upstream to the first checked address.
func (p *Proxy) dial(ctx context.Context, addrs []netip.Addr, port string) (net.Conn, error) {
	if p.cfg.Upstream != nil {
		return p.dialUpstream(ctx, net.JoinHostPort(addrs[0].String(), port))
	}
	d := p.cfg.Policy.Dialer(p.cfg.Resolver)
	var first error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// dialUpstream opens a tunnel to target, an IP:port, through the upstream.
func (p *Proxy) dialUpstream(ctx context.Context, target string) (net.Conn, error) {
	u := p.cfg.Upstream
	forward := &net.Dialer{Timeout: 10 * time.Second}
	if u.Scheme == "socks5" || u.Scheme == "socks5h" {
		d, err := proxy.FromURL(u, forward)
		if err != nil {
			return nil, fmt.Errorf("upstream proxy: %w", err)
		}
		c, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
		if err != nil {
			return nil, fmt.Errorf("upstream proxy: %w", err)
		}
		return c, nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	conn, err := forward.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upstream proxy: %w", err)
	}
	// The handshake and the CONNECT exchange are bounded by a deadline and
	// by ctx (the proxy closing).
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if u.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: u.Hostname()})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("upstream proxy: %w", err)
		}
		conn = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: make(http.Header),
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	br := bufio.NewReader(conn)
	var resp *http.Response
	if err = req.Write(conn); err == nil {
		resp, err = http.ReadResponse(br, req)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("upstream proxy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		conn.Close()
		return nil, fmt.Errorf("upstream proxy answered %s", resp.Status)
	}
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("upstream proxy: %w", ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{})
	return &bufferedConn{Conn: conn, r: br}, nil
}

// bufferedConn reads first what was read past the upstream's CONNECT
// response.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// tunnel copies bytes both ways until both sides are done, either side
// fails, neither side has sent anything for about IdleTimeout, or the proxy
// closes.
func (p *Proxy) tunnel(client net.Conn, fromClient io.Reader, target net.Conn) {
	closeBoth := func() {
		client.Close()
		target.Close()
	}
	stop := context.AfterFunc(p.ctx, closeBoth)
	defer stop()
	defer closeBoth()
	var last atomic.Int64 // when either side last sent anything, UnixNano
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(target, fromClient, client, &last, closeBoth) })
	p.pipe(client, target, target, &last, closeBoth)
	wg.Wait()
}

// pipe copies src (read through r) to dst. A read times out after
// IdleTimeout and the tunnel ends then unless the other direction has moved
// meanwhile: a long download sends nothing the other way for minutes. At
// the end of src it half-closes dst where dst can, so the other direction
// can finish, and ends the tunnel where it cannot.
func (p *Proxy) pipe(dst net.Conn, r io.Reader, src net.Conn, last *atomic.Int64, closeBoth func()) {
	idle := p.cfg.IdleTimeout
	buf := make([]byte, 32<<10)
	for {
		_ = src.SetReadDeadline(time.Now().Add(idle))
		n, err := r.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			_ = dst.SetWriteDeadline(time.Now().Add(idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				closeBoth()
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			if cw, ok := dst.(interface{ CloseWrite() error }); !ok || cw.CloseWrite() != nil {
				closeBoth()
			}
			return
		case isTimeout(err) && time.Since(time.Unix(0, last.Load())) < idle:
			// The other direction is busy: keep waiting.
		default:
			closeBoth()
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
