package rest

import (
	"net/netip"
	"strings"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/gate"
)

// The REST adapter of package gate: its checks as Fiber middleware, its
// refusals written by errorHandler.

type principalKey struct{}

// authenticate resolves the bearer API key and stores the user for handlers.
func (s *server) authenticate(c *fiber.Ctx) error {
	// Cloned: fasthttp reuses its buffers.
	p, err := s.Gate.Authenticate(c.UserContext(), strings.Clone(c.Get(fiber.HeaderAuthorization)), c.Locals(clientAddrKey{}).(netip.Addr))
	if err != nil {
		return err
	}
	c.Locals(principalKey{}, p)
	return c.Next()
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
