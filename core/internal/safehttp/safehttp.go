// Package safehttp downloads the media at URLs users give: through a client
// under the one address policy (internal/egress), which refuses loopback,
// private, link-local and every other special-purpose address — checked on the
// address actually dialled and on every redirect, so DNS rebinding and
// redirects cannot get around it — with a size cap, turning every failure
// into a coded job error.
package safehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
)

// Config tunes the client.
type Config struct {
	// Policy is the address policy; its zero value, production's, refuses
	// loopback, private and every other special-purpose address.
	Policy       egress.Policy
	Timeout      time.Duration // whole request including the body; default 10 minutes
	MaxRedirects int           // default 5
}

// NewClient returns a client under the one address policy (internal/egress):
// every address it dials and every redirect it follows is checked.
func NewClient(cfg Config) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	return egress.NewClient(cfg.Policy,
		egress.ClientConfig{Timeout: cfg.Timeout, MaxRedirects: cfg.MaxRedirects})
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
	if errors.Is(err, egress.ErrAddressNotAllowed) {
		return &job.Error{Code: job.CodeSourceForbidden, Message: "the URL resolves to an address that is not allowed", Err: err}
	}
	if errors.Is(err, egress.ErrRedirect) {
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
