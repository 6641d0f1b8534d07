package rest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/svcauth"
)

// Resumable uploads (tus 1.0) at /v1/uploads: the edge authenticates the
// key and spends its budget, then relays each request to core's tus
// endpoint (core/internal/uploads) with the service token and the user's
// id, streaming the body — a PATCH may carry gigabytes, and the edge holds
// at most a few buffers of it. Core decides sizes, offsets and ownership.
//
// Streaming needs Fiber's StreamRequestBody, which is server-wide, so every
// other route's body is bounded here instead of by fasthttp: a declared
// length over the route's limit is refused from the header, unread (the
// length is zeroed when the header arrives, so fasthttp reads nothing, and
// the connection is closed after the 413), and a chunked body is read
// through its limit before any handler sees it. Each body is read whole
// before the handlers run, as before, so none is left half-read on a
// keep-alive connection.

const tusPath = "/v1/uploads"

// tooLargeHeader marks, from headerReceived to boundBody, a request whose
// declared body is over its route's limit; its value is the limit. A
// client's own header of that name is removed first.
const tooLargeHeader = "X-Ytcaption-Body-Over-Limit"

// tusIdle is how long a relayed upload may send nothing before the edge
// cuts it; each read pushes the deadline forward, so a long upload that
// keeps moving is never cut.
const tusIdle = time.Minute

// tusRequestHeaders are what a tus client says that core reads.
var tusRequestHeaders = []string{"Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata",
	"Upload-Defer-Length", "Upload-Concat", "Content-Type"}

// tusResponseHeaders are what core answers that a tus client reads.
var tusResponseHeaders = []string{"Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Upload-Offset",
	"Upload-Length", "Upload-Expires", "Upload-Metadata", "Cache-Control", "Content-Type"}

// isTus reports whether a path is the tus endpoint's, as Fiber routes it
// (case-insensitively).
func isTus(path []byte) bool {
	p := bytes.ToLower(path)
	return bytes.Equal(bytes.TrimSuffix(p, []byte("/")), []byte(tusPath)) || bytes.HasPrefix(p, []byte(tusPath+"/"))
}

// headerReceived runs once a request's header is read, before its body:
// the tus endpoint gets an idle deadline and no size limit (core has one per
// upload), and any other route its limit, refused unread when declared over.
func (s *server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	h.Del(tooLargeHeader)
	if isTus(requestPath(h)) {
		return fasthttp.RequestConfig{ReadTimeout: tusIdle}
	}
	conf := s.bodyLimits(h)
	if n := h.ContentLength(); n > routeLimit(conf) {
		h.Set(tooLargeHeader, strconv.Itoa(routeLimit(conf)))
		h.SetContentLength(0) // fasthttp reads none of it
	}
	return conf
}

func routeLimit(conf fasthttp.RequestConfig) int {
	if conf.MaxRequestBodySize > 0 {
		return conf.MaxRequestBodySize
	}
	return uploadBodyBytes // the server's BodyLimit: the OpenAI upload
}

func requestPath(h *fasthttp.RequestHeader) []byte {
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	if err := u.Parse(nil, h.RequestURI()); err != nil {
		return nil
	}
	return append([]byte(nil), u.PathOriginal()...)
}

// boundBody reads every body but the tus endpoint's, up to its route's
// limit, before anything else runs — what fasthttp did before bodies were
// streamed — and refuses one over it. A tus request whose body the relay
// did not read to its end closes the connection, so no leftover byte is
// taken for the next request.
func (s *server) boundBody(c *fiber.Ctx) error {
	req := c.Request()
	if isTus(c.Request().URI().PathOriginal()) {
		err := c.Next()
		if req.IsBodyStream() && c.Locals(tusBodyDoneKey{}) == nil {
			c.Context().SetConnectionClose()
		}
		return err
	}
	if v := req.Header.Peek(tooLargeHeader); len(v) > 0 {
		c.Context().SetConnectionClose()
		return codedError(errcode.RequestTooLarge, fmt.Sprintf("the body is larger than %s bytes", v))
	}
	if !req.IsBodyStream() {
		return c.Next()
	}
	limit := routeLimit(s.bodyLimits(&req.Header)) // the upload's, an edited transcript's, or MaxBodyBytes
	b, err := io.ReadAll(io.LimitReader(req.BodyStream(), int64(limit)+1))
	if err != nil {
		c.Context().SetConnectionClose()
		return codedError(errcode.InvalidArgument, "the request body could not be read")
	}
	if len(b) > limit {
		c.Context().SetConnectionClose()
		return codedError(errcode.RequestTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
	}
	req.SetBodyRaw(b)
	return c.Next()
}

type tusBodyDoneKey struct{}

// tusOptions answers a tus client's OPTIONS (what the server supports)
// without a key, as the protocol expects; a browser's CORS preflight is the
// CORS middleware's.
func (s *server) tusOptions(c *fiber.Ctx) error {
	c.Set("Tus-Resumable", "1.0.0")
	c.Set("Tus-Version", "1.0.0")
	c.Set("Tus-Extension", "creation,termination")
	return c.SendStatus(http.StatusNoContent)
}

// tus relays one tus request to core for the authenticated caller.
func (s *server) tus(c *fiber.Ctx) error {
	target := strings.TrimSuffix(s.cfg.CoreURL, "/") + tusPath
	if id := c.Params("id"); id != "" {
		target += "/" + url.PathEscape(id)
	}
	method := strings.Clone(c.Method())
	ctx, cancel := context.WithCancel(c.UserContext())
	defer cancel()
	if method != fiber.MethodPatch {
		// Only a PATCH moves many bytes; the rest are quick.
		ctx, cancel = context.WithTimeout(ctx, s.cfg.CallTimeout)
		defer cancel()
	}
	var body io.Reader = http.NoBody
	length := int64(0)
	req := c.Request()
	if req.IsBodyStream() {
		length = int64(req.Header.ContentLength())
		body = &idleReader{r: req.BodyStream(), conn: c.Context().Conn(), n: length, done: func() { c.Locals(tusBodyDoneKey{}, true) }}
	} else if b := req.Body(); len(b) > 0 {
		body, length = bytes.NewReader(b), int64(len(b))
	}
	out, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	if length >= 0 {
		out.ContentLength = length
	}
	if length == 0 {
		out.Body = http.NoBody
	}
	for _, k := range tusRequestHeaders {
		if v := c.Get(k); v != "" {
			out.Header.Set(k, strings.Clone(v))
		}
	}
	out.Header.Set(svcauth.UserHeader, principal(c).UserID)
	out.Header.Set("X-Request-Id", c.Locals(requestIDKey{}).(string))
	resp, err := s.Core.HTTP.Do(out)
	if err != nil {
		if ctx.Err() != nil && c.Context().Err() == nil && method != fiber.MethodPatch {
			return codedError(errcode.Timeout, "core did not answer in time")
		}
		s.log.WarnContext(c.UserContext(), "relay an upload request", "method", method, "err", err)
		return codedError(errcode.Unavailable, "the upload could not be relayed; resume it")
	}
	defer resp.Body.Close()
	for _, k := range tusResponseHeaders {
		if v := resp.Header.Get(k); v != "" {
			c.Set(k, v)
		}
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		c.Set(fiber.HeaderLocation, s.edgeLocation(c, loc))
	}
	// Replies are headers and, for refusals, a small JSON error.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return codedError(errcode.Unavailable, "core's answer was cut off")
	}
	c.Status(resp.StatusCode)
	if method == fiber.MethodHead {
		return nil
	}
	return c.Send(b)
}

// edgeLocation is core's Location for an upload as a client of the edge
// must use it: the upload's path under this request's own scheme and host.
func (s *server) edgeLocation(c *fiber.Ctx, loc string) string {
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(u.Path, tusPath+"/") {
		return tusPath + "/"
	}
	return c.BaseURL() + u.EscapedPath()
}

// idleReader relays a request body, pushing the connection's read deadline
// forward as bytes arrive (so a long upload that keeps moving is never cut,
// and a stalled one is after tusIdle), and says when it was read to its end.
type idleReader struct {
	r    io.Reader
	conn interface{ SetReadDeadline(time.Time) error }
	n    int64 // bytes still to come; -1: chunked
	last time.Time
	done func()
}

func (r *idleReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(r.last) > time.Second {
		_ = r.conn.SetReadDeadline(now.Add(tusIdle))
		r.last = now
	}
	n, err := r.r.Read(p)
	if r.n > 0 {
		r.n -= int64(n)
		if r.n <= 0 {
			r.done()
		}
	}
	if err == io.EOF && r.n < 0 {
		r.done()
	}
	return n, err
}
