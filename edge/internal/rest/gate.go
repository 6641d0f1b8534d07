package rest

import (
	"context"
	"crypto/subtle"
	"net/netip"
	"strings"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// The REST adapter of package gate: its checks as Fiber middleware, its
// refusals written by errorHandler.

type principalKey struct{}

// authenticate resolves the bearer API key — or, without an Authorization
// header, the web app's session cookie (sessionKey) — and stores the user
// for handlers.
func (s *server) authenticate(c *fiber.Ctx) error {
	// Cloned: fasthttp reuses its buffers.
	authorization := strings.Clone(c.Get(fiber.HeaderAuthorization))
	if authorization == "" && s.Sessions != nil {
		if cookie := c.Cookies(s.Sessions.CookieName()); cookie != "" {
			key, err := s.sessionKey(c, strings.Clone(cookie))
			if err != nil {
				return err
			}
			authorization = "Bearer " + key
		}
	}
	p, err := s.Gate.Authenticate(c.UserContext(), authorization, ClientAddr(c))
	if err != nil {
		return err
	}
	c.Locals(principalKey{}, p)
	return c.Next()
}

// Sessions are the web app's sign-ins (package webapp): a cookie names one,
// which holds an API key and the CSRF token its unsafe requests must carry.
type Sessions interface {
	CookieName() string
	// Lookup returns the session's key and CSRF token; ok is false when the
	// cookie names no live session.
	Lookup(ctx context.Context, cookie string) (key, csrf string, ok bool, err error)
}

// sessionKey is the API key behind a web app session cookie. An unsafe
// request must carry the session's CSRF token in X-CSRF-Token (403
// otherwise): the browser sends the cookie with any request to this site,
// but only the app's own page can read the token. Replies are not to be
// stored: they are one person's data.
func (s *server) sessionKey(c *fiber.Ctx, cookie string) (string, error) {
	key, csrf, ok, err := s.Sessions.Lookup(c.UserContext(), cookie)
	switch {
	case err != nil:
		s.log.WarnContext(c.UserContext(), "web session lookup", "err", err)
		return "", codedError(errcode.Unavailable, "sessions cannot be reached right now; retry shortly")
	case !ok:
		return "", codedError(errcode.Unauthorized, "your session has ended: sign in again")
	}
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
	default:
		if csrf == "" || subtle.ConstantTimeCompare([]byte(csrf), []byte(c.Get("X-CSRF-Token"))) != 1 {
			return "", codedError(errcode.Forbidden, "the X-CSRF-Token header is missing or wrong: reload the page")
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return key, nil
}

// limit applies the caller's rate limit to a REST call — POSTs create work —
// and describes it on every reply.
func (s *server) limit(c *fiber.Ctx) error {
	h, err := s.Gate.Limit(c.UserContext(), principal(c), c.Method() == fiber.MethodPost)
	for k := range h {
		c.Set(k, h.Get(k))
	}
	if err != nil {
		return err
	}
	return c.Next()
}

func principal(c *fiber.Ctx) auth.Principal { return c.Locals(principalKey{}).(auth.Principal) }

// caller is who an authenticated request is for.
func caller(c *fiber.Ctx) gate.Caller {
	return gate.Caller{Principal: principal(c), RequestID: c.Locals(requestIDKey{}).(string)}
}

// coreRequest wraps msg for core on behalf of the caller.
func coreRequest[T any](c *fiber.Ctx, msg *T) *connect.Request[T] {
	return gate.Forward(caller(c), msg)
}

// ClientAddr is the request's client address (clientAddr, found once per
// request by measure), for routes mounted beside the API.
func ClientAddr(c *fiber.Ctx) netip.Addr { return c.Locals(clientAddrKey{}).(netip.Addr) }

// Error is the API's coded error reply ({"error":{"code","message"}}, the
// code's status), for routes mounted beside the API.
func Error(code, message string) error { return codedError(code, message) }
