package rest

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/ratelimit"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// defaultLimits apply when core sends none (an older core).
var defaultLimits = &ytcaptionv1.RateLimits{
	Create: &ytcaptionv1.RateLimit{PerSecond: 10, Burst: 20},
	Read:   &ytcaptionv1.RateLimit{PerSecond: 100, Burst: 200},
}

// bucket picks the caller's limit for this request: POSTs create work and
// have their own, tighter budget; every other call counts as a read.
func bucket(c *fiber.Ctx, p auth.Principal) ratelimit.Limit {
	limits := p.Limits
	if limits == nil {
		limits = defaultLimits
	}
	name, l := "read", limits.GetRead()
	if c.Method() == fiber.MethodPost {
		name, l = "create", limits.GetCreate()
	}
	if l.GetPerSecond() <= 0 {
		l = defaultLimits.GetRead()
		if name == "create" {
			l = defaultLimits.GetCreate()
		}
	}
	return ratelimit.Limit{Name: name, Rate: int(l.GetPerSecond()), Burst: int(max(l.GetBurst(), 1))}
}

// limit applies the caller's rate limit and describes it on every reply with
// the IETF draft's RateLimit-Policy and RateLimit headers: the policy's quota
// q is the burst and its window w the seconds a full burst takes to refill;
// r is what remains now and t the seconds until the bucket is full again.
func (s *server) limit(c *fiber.Ctx) error {
	p := c.Locals(principalKey{}).(auth.Principal)
	lim := bucket(c, p)
	d := s.Limiter.Allow(c.UserContext(), p.KeyID, lim)
	window := int(math.Ceil(float64(lim.Burst) / float64(lim.Rate)))
	c.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", lim.Name, lim.Burst, window))
	c.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", lim.Name, max(d.Remaining, 0), seconds(d.ResetAfter)))
	if !d.Allowed {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(seconds(d.RetryAfter), 1)))
		return newError(fiber.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("too many %s requests for this API key (%d/s, bursts of %d); retry in %s",
				lim.Name, lim.Rate, lim.Burst, d.RetryAfter.Round(time.Millisecond)))
	}
	return c.Next()
}

// seconds rounds up: a client waiting the advertised time must not be early.
func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
