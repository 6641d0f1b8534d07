// Package gate is the edge's request gates, each written once for both of its
// doors: who is calling (an API key → a principal, refused keys limited per
// client address), how much they may (per-key rate limits and the event
// streams a key holds open), and what a retried job creation gets
// (Idempotency-Key: replay, mismatch, in use, or run and remember).
//
// The gate knows no transport. A refusal is an *Error of a Kind, with the
// stable code clients switch on, its message and the headers that go with it;
// package rest says it as the JSON error body with an HTTP status, package
// connectapi as a Connect code with a ytcaption.v1.ErrorDetail. Which calls
// create work, and how a key or an address is read from a request, is each
// door's business.
package gate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/ratelimit"
	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Bounds both doors hold a request to.
const (
	// MaxUploadBytes is the largest file an upload (REST's
	// /v1/audio/transcriptions, Connect's UploadJob) takes, as OpenAI's API
	// does; core enforces the same limit.
	MaxUploadBytes = 25 << 20
	// ReadTimeout is how long a request's body may take to arrive, and
	// UploadReadTimeout an upload's.
	ReadTimeout       = 15 * time.Second
	UploadReadTimeout = 5 * time.Minute
)

// Config tunes the gate.
type Config struct {
	// MaxStreams is how many event streams one API key may hold open at
	// once when its plan sets none; default 10.
	MaxStreams int
}

// Deps are what the gate decides with.
type Deps struct {
	Guard   *auth.Guard // API keys, and refused keys limited per address
	Limiter *ratelimit.Limiter
	Streams *ratelimit.Streams // event streams open per key
	Replays *replay.Store
}

// Gate is the edge's authentication, limits and idempotency, for both doors.
type Gate struct {
	log *slog.Logger
	cfg Config
	Deps
}

// New returns a gate; log hears of API keys that could not be checked.
func New(log *slog.Logger, cfg Config, d Deps) *Gate {
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 10
	}
	return &Gate{log: log, cfg: cfg, Deps: d}
}

// Kind is the class of a refusal, which each door says in its own terms.
type Kind int

const (
	Unauthenticated Kind = iota + 1 // no valid API key (401, unauthenticated)
	Exhausted                       // a budget is spent: retry later (429, resource_exhausted)
	Unavailable                     // the gate cannot decide now (503, unavailable)
	Invalid                         // the request is malformed (400, invalid_argument)
	KeyMismatch                     // an idempotency key reused with other parameters (422, failed_precondition)
	KeyInUse                        // an idempotency key's first request still runs (409, aborted)
)

// Error is a request the gate turned away.
type Error struct {
	Kind    Kind
	Code    string // stable, for clients: "unauthorized", "rate_limited", …
	Message string
	// Header goes with the refusal: Retry-After, and a rate limit's
	// RateLimit-Policy and RateLimit.
	Header http.Header
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func refuse(kind Kind, code, msg string) *Error { return &Error{Kind: kind, Code: code, Message: msg} }

// Caller is who a request is for, as the gate established it.
type Caller struct {
	auth.Principal
	RequestID string
}

// HeaderRequestID names a request across the edge, core and their logs.
const HeaderRequestID = "X-Request-Id"

// requestIDs are what a client may send as X-Request-Id; anything else is
// replaced, so logs never carry a caller's arbitrary bytes.
var requestIDs = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// RequestID is the id a request goes by: the one the client sent if sane,
// else a new one.
func RequestID(sent string) string {
	if requestIDs.MatchString(sent) {
		return sent
	}
	return rand.Text()
}

// Forward wraps msg for core on behalf of c: whose call it is, and the
// request id.
func Forward[T any](c Caller, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set(svcauth.UserHeader, c.UserID)
	req.Header().Set(HeaderRequestID, c.RequestID)
	return req
}

// Authenticate resolves the API key in authorization (the Authorization
// header's value, "Bearer <key>") of a request from addr. Refusals: no key or
// an invalid one (Unauthenticated), too many refused keys from addr
// (Exhausted, with Retry-After), keys that cannot be checked now
// (Unavailable; the cause is logged here).
func (g *Gate) Authenticate(ctx context.Context, authorization string, addr netip.Addr) (auth.Principal, error) {
	key := svcauth.Bearer(http.Header{"Authorization": {authorization}})
	if key == "" {
		return auth.Principal{}, refuse(Unauthenticated, errcode.Unauthorized, "send your API key as \"Authorization: Bearer <key>\"")
	}
	p, err := g.Guard.Authenticate(ctx, key, addr)
	var te *auth.ThrottledError
	switch {
	case errors.As(err, &te):
		retry := max(seconds(te.RetryAfter), 1)
		e := refuse(Exhausted, errcode.RateLimited, fmt.Sprintf("too many invalid API keys from your address; retry in %d s", retry))
		e.Header = http.Header{}
		e.Header.Set("Retry-After", strconv.Itoa(retry))
		return auth.Principal{}, e
	case errors.Is(err, auth.ErrUnauthorized):
		return auth.Principal{}, refuse(Unauthenticated, errcode.Unauthorized, "the API key is not valid")
	case err != nil:
		g.log.WarnContext(ctx, "authenticate", "err", err)
		return auth.Principal{}, refuse(Unavailable, errcode.Unavailable, "API keys cannot be checked right now; retry shortly")
	}
	return p, nil
}

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

// Limit takes one call from p's key's bucket — the create bucket when the
// call creates work, else the read bucket. It returns the headers that
// describe the bucket on every reply (the IETF draft's RateLimit-Policy and
// RateLimit); a refusal is Exhausted, its Header those and Retry-After.
func (g *Gate) Limit(ctx context.Context, p auth.Principal, create bool) (http.Header, error) {
	return g.take(ctx, p.KeyID, bucketFor(p, create), "this API key")
}

// take takes one request from key's bucket for lim, whose it is (for the
// refusal's message): Limit's headers and refusal.
func (g *Gate) take(ctx context.Context, key string, lim ratelimit.Limit, whose string) (http.Header, error) {
	d := g.Limiter.Allow(ctx, key, lim)
	h := limitHeaders(lim, d)
	if d.Allowed {
		return h, nil
	}
	e := refuse(Exhausted, errcode.RateLimited, fmt.Sprintf("too many %s requests for %s (%d/s, bursts of %d); retry in %s",
		lim.Name, whose, lim.Rate, lim.Burst, d.RetryAfter.Round(time.Millisecond)))
	e.Header = h.Clone()
	e.Header.Set("Retry-After", strconv.Itoa(max(seconds(d.RetryAfter), 1)))
	return h, e
}

// limitHeaders describes a decision: the policy's quota q is the burst and
// its window w the seconds a full burst takes to refill; r is what remains
// now and t the seconds until the bucket is full again.
//
// Every reply carries them, so they are built without fmt and set under
// their canonical keys directly (fmt and Header.Set took a tenth of the
// edge's own work on a saturated read).
func limitHeaders(lim ratelimit.Limit, d ratelimit.Decision) http.Header {
	window := int(math.Ceil(float64(lim.Burst) / float64(lim.Rate)))
	name := strconv.Quote(lim.Name)
	return http.Header{
		"Ratelimit-Policy": {name + ";q=" + strconv.Itoa(lim.Burst) + ";w=" + strconv.Itoa(window)},
		"Ratelimit":        {name + ";r=" + strconv.Itoa(max(d.Remaining, 0)) + ";t=" + strconv.Itoa(seconds(d.ResetAfter))},
	}
}

// Stream takes one of the event-stream places of p's key: its plan's cap,
// else Config.MaxStreams. release gives the place back however the stream
// ends (calling it again does nothing); a key holding all its places is
// refused, Exhausted.
func (g *Gate) Stream(p auth.Principal) (release func(), err error) {
	most := g.cfg.MaxStreams
	if n := p.Limits.GetMaxStreams(); n > 0 {
		most = int(n)
	}
	release, ok := g.Streams.Acquire(p.KeyID, most)
	if !ok {
		return nil, refuse(Exhausted, errcode.TooManyStreams,
			fmt.Sprintf("this API key already holds %d open event streams; close one first", most))
	}
	return release, nil
}

// seconds rounds up: a client waiting the advertised time must not be early.
func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
