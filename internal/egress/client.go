package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrRedirect is wrapped when a client refuses to follow a redirect: too
// many hops, or to a scheme other than http and https.
var ErrRedirect = errors.New("redirect refused")

// NoRedirects, as ClientConfig.MaxRedirects, follows none: the redirect
// response itself is the answer.
const NoRedirects = -1

// Control is a net.Dialer Control function: it runs on the resolved address
// right before each connect, the one place a check cannot be raced by DNS
// (rebinding) or skipped by a redirect.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &AddressError{Addr: address, Reason: "not an IP address and port"}
	}
	return p.Check(ap.Addr())
}

// Dialer returns a dialer that checks every address it connects to. resolver
// nil is the system's.
func (p Policy) Dialer(resolver *net.Resolver) *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  resolver,
		Control:   p.Control,
	}
}

// ClientConfig tunes NewClient.
type ClientConfig struct {
	Timeout time.Duration // the whole exchange, body included; default 1 minute
	// MaxRedirects is how many redirects are followed; default 5;
	// NoRedirects follows none.
	MaxRedirects int
	Resolver     *net.Resolver // nil: the system's
}

// NewClient returns an HTTP client under policy p: every request's literal
// host is checked before anything is dialled (CheckHost), every address it
// dials is checked right before connect (Control), no environment proxy dials
// for it unchecked, and every redirect is checked before it is followed —
// its scheme and its hop count — besides the checks of the next request.
func NewClient(p Policy, cfg ClientConfig) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.MaxRedirects == 0 {
		cfg.MaxRedirects = 5
	}
	transport := &http.Transport{
		// Never a proxy (an environment proxy would dial for us, unchecked):
		// Proxy is the one hook http.Transport calls for every request, the
		// first and every redirect, before it dials; a literal host the
		// policy refuses (127.0.0.1%lo, 0x7f000001) fails here, with no DNS
		// lookup of a "name" the system resolver might read as an address.
		Proxy: func(req *http.Request) (*url.URL, error) {
			return nil, p.CheckHost(req.URL.Hostname())
		},
		DialContext:           p.Dialer(cfg.Resolver).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if cfg.MaxRedirects < 0 {
				return http.ErrUseLastResponse
			}
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRedirect, cfg.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: to a %q URL", ErrRedirect, req.URL.Scheme)
			}
			return nil // its host: Proxy checks it, as for every request
		},
	}
}
