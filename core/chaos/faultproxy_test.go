package chaos

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// link is the state of a faultProxy's link.
type link int

const (
	linkUp link = iota
	// linkSlow delays every chunk each way by the proxy's latency.
	linkSlow
	// linkBlackhole is a half-open link: connections are accepted and what
	// is sent is swallowed, but nothing is forwarded and nothing comes back,
	// and no error tells either side — as when a route or a firewall drops
	// packets. Lifted, the held connections carry on, as TCP's retransmits
	// would.
	linkBlackhole
	// linkCut closes every connection and refuses new ones.
	linkCut
)

// faultProxy is a TCP proxy between two parts of the stack: it slows,
// blackholes or cuts the link on demand, and balances over upstreams that
// answer a health check (GET healthPath), as a load balancer in front of
// core replicas does — a paused replica still accepts TCP connections, so
// only a health check tells.
type faultProxy struct {
	t          *testing.T
	ln         net.Listener
	upstreams  []string // host:port
	healthPath string

	mu      sync.Mutex
	changed *sync.Cond
	state   link
	latency time.Duration
	healthy []bool
	next    int
	conns   map[net.Conn]struct{}
}

func startFaultProxy(t *testing.T, healthPath string, upstreams ...string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, upstreams: upstreams, healthPath: healthPath,
		healthy: make([]bool, len(upstreams)), conns: map[net.Conn]struct{}{}}
	p.changed = sync.NewCond(&p.mu)
	for i := range p.healthy {
		p.healthy[i] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { p.accept() })
	if healthPath != "" {
		wg.Go(func() { p.check(stop) })
	}
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		p.set(linkCut, 0)
		wg.Wait()
	})
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }
func (p *faultProxy) url() string  { return "http://" + p.addr() }

// set changes the link's state; cutting closes every open connection.
func (p *faultProxy) set(s link, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.latency = s, latency
	if s == linkCut {
		for c := range p.conns {
			c.Close()
		}
	}
	p.changed.Broadcast()
}

// check marks upstreams healthy while their health path answers 200
// within 500 ms.
func (p *faultProxy) check(stop <-chan struct{}) {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		for i, u := range p.upstreams {
			ok := false
			if resp, err := client.Get("http://" + u + p.healthPath); err == nil {
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
			p.mu.Lock()
			p.healthy[i] = ok
			p.mu.Unlock()
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// pick returns the next healthy upstream, round robin; all of them in turn
// when none is healthy (a restart in progress).
func (p *faultProxy) pick() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out, rest []string
	for k := range p.upstreams {
		i := (p.next + k) % len(p.upstreams)
		if p.healthy[i] {
			out = append(out, p.upstreams[i])
		} else {
			rest = append(rest, p.upstreams[i])
		}
	}
	p.next++
	return append(out, rest...)
}

func (p *faultProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *faultProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == linkCut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *faultProxy) forget(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *faultProxy) serve(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	// A blackholed link swallows the connection before it reaches anyone.
	if !p.pass(c) {
		p.forget(c)
		return
	}
	var up net.Conn
	for _, u := range p.pick() {
		var err error
		if up, err = net.DialTimeout("tcp", u, time.Second); err == nil {
			break
		}
	}
	if up == nil || !p.track(up) {
		p.forget(c)
		if up != nil {
			up.Close()
		}
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(up, c) })
	wg.Go(func() { p.pipe(c, up) })
	wg.Wait()
	p.forget(c, up)
}

// pass waits while the link is blackholed; false once c is closed.
func (p *faultProxy) pass(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.state == linkBlackhole {
		p.changed.Wait()
	}
	_, open := p.conns[c]
	return open && p.state != linkCut
}

func (p *faultProxy) delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == linkSlow {
		return p.latency
	}
	return 0
}

// pipe copies src to dst chunk by chunk, each chunk held while the link is
// blackholed and delayed while it is slow.
func (p *faultProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass(src) {
				break
			}
			time.Sleep(p.delay())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	// Half-close so the other direction drains, as TCP does.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// TestFaultProxyDoesWhatEachFaultSays: the proxy the suite trusts to break
// links forwards when up, avoids an upstream whose health check fails,
// delays when slow, holds a request without an answer or an error while
// blackholed (and delivers it once lifted), and refuses while cut.
func TestFaultProxyDoesWhatEachFaultSays(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	serve := func(name string, health *atomic.Bool) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" && health != nil && !health.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := serve("a", &healthy), serve("b", nil)
	p := startFaultProxy(t, "/health", strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://"))
	get := func(timeout time.Duration) (string, error) {
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(p.url() + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	seen := map[string]bool{}
	for range 4 {
		got, err := get(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		seen[got] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("balanced over both upstreams: saw %v", seen)
	}

	healthy.Store(false)
	time.Sleep(time.Second) // a few health checks
	for range 4 {
		if got, err := get(5 * time.Second); err != nil || got != "b" {
			t.Fatalf("an unhealthy upstream gets no connection: %q %v", got, err)
		}
	}
	healthy.Store(true)

	p.set(linkSlow, 300*time.Millisecond)
	start := time.Now()
	if _, err := get(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Fatalf("a slow link delays each way: took %s", took)
	}

	p.set(linkBlackhole, 0)
	if _, err := get(500 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("a blackholed link neither answers nor errors before the client gives up: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := get(10 * time.Second); done <- err }()
	time.Sleep(300 * time.Millisecond)
	p.set(linkUp, 0)
	if err := <-done; err != nil {
		t.Fatalf("a held request goes through once the blackhole lifts: %v", err)
	}

	p.set(linkCut, 0)
	if _, err := get(5 * time.Second); err == nil {
		t.Fatal("a cut link refuses")
	}
	p.set(linkUp, 0)
	if _, err := get(5 * time.Second); err != nil {
		t.Fatalf("restored: %v", err)
	}
}
