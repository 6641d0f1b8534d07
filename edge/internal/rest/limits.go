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

// bucketFor picks the caller's limit: creating work (a job from a URL or an
// upload) has its own, tighter budget; every other call counts as a read.
func bucketFor(p auth.Principal, create bool) ratelimit.Limit {
	limits := p.Limits
	if limits == nil {
		limits = defaultLimits
	}
	name, l, def := "read", limits.GetRead(), defaultLimits.GetRead()
	if create {
		name, l, def = "create", limits.GetCreate(), defaultLimits.GetCreate()
	}
	if l.GetPerSecond() <= 0 {
		l = def
	}
	return ratelimit.Limit{Name: name, Rate: int(l.GetPerSecond()), Burst: int(max(l.GetBurst(), 1))}
}

// maxStreams is how many event streams p's key may hold open at once: its
// plan's cap, else def.
func maxStreams(p auth.Principal, def int) int {
	if n := p.Limits.GetMaxStreams(); n > 0 {
		return int(n)
	}
	return def
}

// limitHeaders describes a decision with the IETF draft's headers: the
// policy's quota q is the burst and its window w the seconds a full burst
// takes to refill; r is what remains now and t the seconds until the bucket
// is full again. retry is Retry-After's whole seconds for a refusal.
func limitHeaders(lim ratelimit.Limit, d ratelimit.Decision) (policy, state string, retry int) {
	window := int(math.Ceil(float64(lim.Burst) / float64(lim.Rate)))
	policy = fmt.Sprintf("%q;q=%d;w=%d", lim.Name, lim.Burst, window)
	state = fmt.Sprintf("%q;r=%d;t=%d", lim.Name, max(d.Remaining, 0), seconds(d.ResetAfter))
	return policy, state, max(seconds(d.RetryAfter), 1)
}

// limit applies the caller's rate limit to a REST call — POSTs create work —
// and describes it on every reply.
func (s *server) limit(c *fiber.Ctx) error {
	p := c.Locals(principalKey{}).(auth.Principal)
	lim := bucketFor(p, c.Method() == fiber.MethodPost)
	d := s.Limiter.Allow(c.UserContext(), p.KeyID, lim)
	policy, state, retry := limitHeaders(lim, d)
	c.Set("RateLimit-Policy", policy)
	c.Set("RateLimit", state)
	if !d.Allowed {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retry))
		return newError(fiber.StatusTooManyRequests, "rate_limited",
			fmt.Sprintf("too many %s requests for this API key (%d/s, bursts of %d); retry in %s",
				lim.Name, lim.Rate, lim.Burst, d.RetryAfter.Round(time.Millisecond)))
	}
	return c.Next()
}

// seconds rounds up: a client waiting the advertised time must not be early.
func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
