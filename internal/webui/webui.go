// Package webui is the look both of ytcaption's web pages share — the user
// web app the edge serves at / and core's admin dashboard at /admin/ — so that
// the two read as one product: CSS design tokens and a stylesheet, a few small
// vanilla ES-module components, and the security headers every page sends.
// Everything is embedded: nothing to build, no Node, no third-party request.
//
// How to use it:
//
//  1. Serve the files under a prefix of your own, e.g. on a net/http mux
//     mux.Handle("GET /admin/ui/", http.StripPrefix("/admin/ui/", webui.Handler()));
//     (the edge, on Fiber, serves webui.Files itself).
//  2. In each page's <head>:
//     <meta name="viewport" content="width=device-width, initial-scale=1">
//     <link rel="stylesheet" href="<prefix>/webui.css">
//     <script type="module" src="<prefix>/webui.js"></script>
//     then your own stylesheet for what is yours alone.
//  3. Build pages from its classes (see the comments in webui.css): header.bar
//     with nav a[aria-current=page], main.page, .card, .cards, .table-wrap
//     around every table (a wide table scrolls inside it, never the page),
//     button / button.primary / button.danger, .field (label + input),
//     .notice.error / .notice.ok (role=alert), .badge.state-<job state>,
//     .muted, .visually-hidden, a.skip-link.
//  4. webui.js wires, on every page that loads it: form[data-confirm] and
//     button[data-confirm] ask "are you sure" with the attribute's text before
//     a destructive action goes through; time[data-relative] shows "3 min ago".
//     It also exports helpers for other modules (see its comments).
//  5. Send SetPageHeaders on every HTML page: a Content-Security-Policy that
//     allows only the page's own origin and no inline script, framing refused,
//     no MIME sniffing, no referrer leaking tokens from /s/... paths.
//
// Changes here must stay compatible: both binaries use it, and a class or
// token another page uses is renamed only with that page.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Files are the shared assets: webui.css and webui.js at the root.
var Files fs.FS = must(fs.Sub(static, "static"))

func must(f fs.FS, err error) fs.FS {
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	return f
}

// Handler serves Files. The names carry no version, so browsers revalidate
// (no-cache): a new release's stylesheet is seen at once.
func Handler() http.Handler {
	files := http.FileServerFS(Files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// CSP is the Content-Security-Policy of every page: only the page's own
// origin, no inline script or style attribute injection, no plugins, no
// framing, forms post only home.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// PageHeaders are the security headers of every HTML page, in order.
var PageHeaders = [][2]string{
	{"Content-Security-Policy", CSP},
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
}

// SetPageHeaders sets PageHeaders on h.
func SetPageHeaders(h http.Header) {
	for _, kv := range PageHeaders {
		h.Set(kv[0], kv[1])
	}
}
