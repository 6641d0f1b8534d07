// Package webapp is ytcaption's web page for people who do not use APIs,
// served by the edge at /: sign in with an API key, paste a link or drop a
// file, watch the job work, correct the captions in an editor, download them
// in every format, share a read-only link, and manage one's jobs.
//
// It is a small static app — plain HTML, the shared look of internal/webui,
// and vanilla JavaScript ES modules — embedded in the edge binary: nothing to
// build, no Node, and every byte from the edge itself. The browser speaks
// only the public REST API (/v1/...), as any client does. The one thing the
// edge adds for it is the session: signing in posts the API key here; the
// edge checks it with the same gate as every API call (refused keys limited
// per client address), keeps it server-side (sessions.go: Redis, or memory on
// a single box, sealed under the cookie) and hands the browser an HttpOnly,
// SameSite=Strict cookie naming the session (Secure over TLS), plus a CSRF
// token the app sends in X-CSRF-Token on every unsafe request. Package rest
// accepts the cookie on /v1/ in place of an Authorization header (Lookup),
// so rate limits and quotas stay per key, exactly as before.
package webapp

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/webui"
)

//go:embed static
var static embed.FS

// Files are the app's page, scripts and stylesheet.
var Files = must(fs.Sub(static, "static"))

func must(f fs.FS, err error) fs.FS {
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	return f
}

const (
	// CookieName names the session cookie.
	CookieName = "ytcaption_session"
	// CSRFHeader carries the session's CSRF token on unsafe requests.
	CSRFHeader = "X-CSRF-Token"
	// sessionTTL is how long a sign-in lasts, as the admin dashboard's.
	sessionTTL = 12 * time.Hour
	// maxKeyBytes bounds the key a sign-in may post; real keys are far shorter.
	maxKeyBytes = 512
)

// Deps are what the app stands on.
type Deps struct {
	Gate    *gate.Gate       // checks the key a sign-in posts
	Redis   *redis.Client    // nil: sessions live in this edge's memory
	Breaker *breaker.Breaker // around Redis calls
	// ClientAddr is a request's client address (trusted X-Forwarded-For),
	// which refused keys are limited by.
	ClientAddr func(*fiber.Ctx) netip.Addr
	// Error makes the REST API's coded error ({"error":{"code","message"}}).
	Error func(code, message string) error
}

// App is the web app's server side.
type App struct {
	log      *slog.Logger
	d        Deps
	sessions *sessions
}

// New returns the app; Mount serves it.
func New(log *slog.Logger, d Deps) *App {
	return &App{log: log, d: d, sessions: newSessions(d.Redis, d.Breaker, sessionTTL)}
}

// pages are the app's addresses: each answers with the app's one page,
// whose script draws the view the path names.
var pages = []string{"/", "/new", "/jobs", "/jobs/:id", "/jobs/:id/edit", "/signin", "/s/:token"}

// Mount adds the app's routes to app, beside the API.
func (a *App) Mount(app fiber.Router) {
	index, err := fs.ReadFile(Files, "index.html")
	if err != nil {
		panic(err)
	}
	for _, p := range pages {
		app.Get(p, func(c *fiber.Ctx) error {
			setPageHeaders(c)
			c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
			return c.Send(index)
		})
	}
	app.Get("/app/*", serveFS(Files))
	app.Get("/ui/*", serveFS(webui.Files))
	app.Get("/app-session", a.session)
	app.Post("/app-session", a.signIn)
	app.Delete("/app-session", a.signOut)
}

func setPageHeaders(c *fiber.Ctx) {
	for _, kv := range webui.PageHeaders {
		c.Set(kv[0], kv[1])
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
}

// serveFS serves the files of fsys under the route's wildcard.
func serveFS(fsys fs.FS) fiber.Handler {
	return func(c *fiber.Ctx) error {
		name := path.Clean(strings.Clone(c.Params("*")))
		if name == "." || strings.HasSuffix(name, ".html") {
			return fiber.ErrNotFound
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fiber.ErrNotFound
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		c.Set(fiber.HeaderContentType, ctype)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		return c.Send(b)
	}
}

// Lookup is the API key and CSRF token of the session a cookie names, for
// package rest; ok is false when none lives (forged, expired, signed out).
func (a *App) Lookup(ctx context.Context, cookie string) (key, csrf string, ok bool, err error) {
	s, err := a.sessions.get(ctx, cookie)
	if errors.Is(err, ErrNoSession) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	return s.Key, s.CSRF, true, nil
}

// CookieName is the session cookie's name, for package rest.
func (a *App) CookieName() string { return CookieName }

type sessionJSON struct {
	SignedIn bool   `json:"signed_in"`
	CSRF     string `json:"csrf,omitempty"`
}

// session tells the page whether it is signed in, and its CSRF token. The
// cookie is SameSite=Strict, so another site's page never gets a token.
func (a *App) session(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	cookie := c.Cookies(CookieName)
	if cookie == "" {
		return c.JSON(sessionJSON{})
	}
	s, err := a.sessions.get(c.UserContext(), strings.Clone(cookie))
	if errors.Is(err, ErrNoSession) {
		a.clearCookie(c)
		return c.JSON(sessionJSON{})
	}
	if err != nil {
		return a.unavailable(c, err)
	}
	return c.JSON(sessionJSON{SignedIn: true, CSRF: s.CSRF})
}

// signIn checks the posted key with the API's own gate — a refused key
// counts against the client address's budget, so guessing is limited as on
// the API — and on success starts a session.
func (a *App) signIn(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	// JSON only: a form on another site cannot send it without CORS'
	// preflight, so nobody is signed in to an account not theirs.
	if ct, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); ct != fiber.MIMEApplicationJSON {
		return a.d.Error(errcode.InvalidArgument, "send {\"key\": \"…\"} as application/json")
	}
	if !sameOrigin(c) {
		return a.d.Error(errcode.Forbidden, "sign in from this site's own page")
	}
	var body struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(c.Body(), &body); err != nil {
		return a.d.Error(errcode.InvalidJSON, "the body is not valid JSON")
	}
	key := strings.TrimSpace(body.Key)
	if len(key) > maxKeyBytes {
		return a.d.Error(errcode.Unauthorized, "the API key is not valid")
	}
	if key == "" {
		return a.d.Error(errcode.Unauthorized, "paste your API key")
	}
	if _, err := a.d.Gate.Authenticate(c.UserContext(), "Bearer "+key, a.d.ClientAddr(c)); err != nil {
		return err // the gate's refusal: 401, 429 with Retry-After, or 503
	}
	cookie, s, err := a.sessions.create(c.UserContext(), key)
	if err != nil {
		return a.unavailable(c, err)
	}
	c.Cookie(&fiber.Cookie{Name: CookieName, Value: cookie, Path: "/", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: c.Protocol() == "https", Expires: time.Now().Add(sessionTTL)})
	return c.JSON(sessionJSON{SignedIn: true, CSRF: s.CSRF})
}

// signOut ends the session on the server — the cookie is worthless after,
// even if a copy survives — and clears it in the browser. It needs the
// CSRF token: another site cannot sign anyone out.
func (a *App) signOut(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	cookie := strings.Clone(c.Cookies(CookieName))
	if cookie == "" {
		return c.SendStatus(fiber.StatusNoContent)
	}
	s, err := a.sessions.get(c.UserContext(), cookie)
	if errors.Is(err, ErrNoSession) {
		a.clearCookie(c)
		return c.SendStatus(fiber.StatusNoContent)
	}
	if err != nil {
		return a.unavailable(c, err)
	}
	if !CSRFMatches(s.CSRF, c.Get(CSRFHeader)) {
		return a.d.Error(errcode.Forbidden, "the X-CSRF-Token header is missing or wrong: reload the page")
	}
	if err := a.sessions.remove(c.UserContext(), cookie); err != nil {
		return a.unavailable(c, err)
	}
	a.clearCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *App) clearCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: CookieName, Value: "", Path: "/", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: c.Protocol() == "https", MaxAge: -1, Expires: time.Unix(0, 0)})
}

func (a *App) unavailable(c *fiber.Ctx, err error) error {
	a.log.WarnContext(c.UserContext(), "web session store", "err", err)
	return a.d.Error(errcode.Unavailable, "sessions cannot be reached right now; retry shortly")
}

// sameOrigin is false when the request names an Origin other than the
// host it was sent to; a request with no Origin (not a browser's) passes.
func sameOrigin(c *fiber.Ctx) bool {
	o := c.Get(fiber.HeaderOrigin)
	if o == "" {
		return true
	}
	_, host, ok := strings.Cut(o, "://")
	return ok && strings.EqualFold(host, c.Hostname())
}
