// Package safehttp is ytcaption's outbound HTTP for URLs users give it (media
// now, webhooks later). It refuses to connect to loopback, private, link-local
// and other internal addresses — checked on the address actually dialled, so
// DNS rebinding and redirects cannot get around it — and it downloads with a
// size cap, turning every failure into a coded job error.
package safehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Config tunes the client.
type Config struct {
	// AllowPrivate permits loopback, private and link-local addresses. Only the
	// dev stack and tests set it.
	AllowPrivate bool
	Timeout      time.Duration // whole request including the body; default 10 minutes
	MaxRedirects int           // default 5
}

// ErrAddressNotAllowed is returned when a URL resolves to a refused address.
var ErrAddressNotAllowed = errors.New("address not allowed")

var errRedirect = errors.New("redirect refused")

var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("10.0.0.0/8"),     // private
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),  // private
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"), // private
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
}

// CheckAddr says whether the client may connect to ip.
func CheckAddr(ip netip.Addr, allowPrivate bool) error {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !ip.IsValid() || ip.IsMulticast() || ip.IsUnspecified() {
		return fmt.Errorf("%w: %s", ErrAddressNotAllowed, ip)
	}
	if allowPrivate {
		return nil
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s", ErrAddressNotAllowed, ip)
		}
	}
	return nil
}

// NewClient returns a client that checks every address it dials.
func NewClient(cfg Config) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = 5
	}
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		// Control runs on the resolved address right before connect: the only
		// place a check cannot be raced by DNS.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrAddressNotAllowed, address)
			}
			return CheckAddr(ap.Addr(), cfg.AllowPrivate)
		},
	}
	transport := &http.Transport{
		Proxy:                 nil, // an environment proxy would dial for us, unchecked
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= cfg.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", errRedirect, cfg.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: to a %q URL", errRedirect, req.URL.Scheme)
			}
			return nil
		},
	}
}

// File is a downloaded file.
type File struct {
	Path        string
	Size        int64
	ContentType string
	Filename    string // from Content-Disposition, else the URL path
}

// Download fetches rawURL into dir, refusing bodies over maxBytes. Failures
// are *job.Error: source_not_found, source_forbidden, media_too_large,
// empty_media, or download_failed (retryable when another try might work).
func Download(ctx context.Context, c *http.Client, rawURL, dir string, maxBytes int64) (File, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return File{}, job.Errorf(job.CodeInvalidURL, "the URL cannot be requested")
	}
	req.Header.Set("User-Agent", "ytcaption/1 (+media fetch)")
	resp, err := c.Do(req)
	if err != nil {
		return File{}, classify(ctx, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp.StatusCode); err != nil {
		return File{}, err
	}
	if resp.ContentLength > maxBytes {
		return File{}, tooLarge(maxBytes)
	}
	f, err := os.CreateTemp(dir, "download-*")
	if err != nil {
		return File{}, fmt.Errorf("create download file: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return File{}, classify(ctx, err)
	}
	if n > maxBytes {
		return File{}, tooLarge(maxBytes)
	}
	if n == 0 {
		return File{}, job.Errorf(job.CodeEmptyMedia, "the URL returned an empty body")
	}
	if err := f.Close(); err != nil {
		return File{}, fmt.Errorf("write download file: %w", err)
	}
	return File{Path: f.Name(), Size: n, ContentType: resp.Header.Get("Content-Type"), Filename: filename(resp)}, nil
}

func tooLarge(max int64) error {
	return job.Errorf(job.CodeMediaTooLarge, "the file is larger than the %d MB limit", max>>20)
}

func statusError(code int) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusNotFound || code == http.StatusGone:
		return job.Errorf(job.CodeSourceNotFound, "the URL answered %d %s", code, http.StatusText(code))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return job.Errorf(job.CodeSourceForbidden, "the URL answered %d %s", code, http.StatusText(code))
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return &job.Error{Code: job.CodeDownloadFailed, Message: "the URL answered " + strconv.Itoa(code) + " " + http.StatusText(code), Retryable: true}
	}
	return job.Errorf(job.CodeDownloadFailed, "the URL answered %d %s", code, http.StatusText(code))
}

// classify turns a transport error into a coded one. Cancellation is returned
// as is: the caller decides what a cancelled download means.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, ErrAddressNotAllowed) {
		return &job.Error{Code: job.CodeSourceForbidden, Message: "the URL resolves to an address that is not allowed", Err: err}
	}
	if errors.Is(err, errRedirect) {
		return &job.Error{Code: job.CodeDownloadFailed, Message: "the URL redirects in a way that is not followed", Err: err}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &job.Error{Code: job.CodeSourceNotFound, Message: "the URL's host does not exist", Err: err}
	}
	return &job.Error{Code: job.CodeDownloadFailed, Message: "the download was interrupted", Retryable: true, Err: err}
}

func filename(resp *http.Response) string {
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		if name := filepath.Base(params["filename"]); name != "." && name != "/" && name != "" {
			return name
		}
	}
	if name := path.Base(resp.Request.URL.Path); name != "." && name != "/" {
		return name
	}
	return ""
}
