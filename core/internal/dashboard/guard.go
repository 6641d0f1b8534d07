package dashboard

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/store"
)

// home is where a sign-in goes when its next page is missing or refused.
const home = "/admin/"

// safeNext returns next if it is a clean path on this site under /admin/,
// else home. Browsers read "/\host" and "//host" as other sites, and a
// path may hide either behind percent-encoding and dot segments, so the
// path is decoded (repeatedly), refused if it holds a backslash, a control
// character, a scheme or a doubled slash, and cleaned before its prefix is
// checked. A query survives, re-encoded; a fragment does not.
func safeNext(next string) string {
	next, _, _ = strings.Cut(next, "#")
	p, query, _ := strings.Cut(next, "?")
	for range 4 {
		d, err := url.PathUnescape(p)
		if err != nil {
			return home
		}
		if d == p {
			break
		}
		p = d
	}
	switch {
	case strings.ContainsAny(p, `\%`), strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }),
		!strings.HasPrefix(p, "/"), strings.Contains(p, "//"), strings.Contains(p, ":"):
		return home
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if !strings.HasPrefix(clean, home) {
		return home
	}
	out := (&url.URL{Path: clean}).EscapedPath()
	if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
		out += "?" + q.Encode()
	}
	return out
}

// maxFormBytes bounds a dashboard form post: its fields are a key, a CSRF
// token and a page to return to.
const maxFormBytes = 64 << 10

// maxCookieFormBytes bounds the form that adds a cookie file: the file, at
// most store.MaxCookieFileBytes, a name, a CSRF token and multipart's
// framing.
const maxCookieFormBytes = store.MaxCookieFileBytes + 16<<10

// limitForm caps the body h may read at maxFormBytes.
func limitForm(h http.HandlerFunc) http.HandlerFunc { return limitBody(maxFormBytes, h) }

// limitBody caps the body h may read at n bytes.
func limitBody(n int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h(w, r)
	}
}

// signInLimiter allows each client address a burst of sign-in attempts and
// then one per interval (GCRA); a successful attempt is given back, so only
// failures count. Keys are client addresses (clientaddr.Bucket: an IPv6
// one by its /64, which one client controls).
type signInLimiter struct {
	interval time.Duration
	burst    int
	max      int // addresses tracked at once
	now      func() time.Time

	mu  sync.Mutex
	tat map[string]time.Time // each address's theoretical arrival time
}

// Ten failed sign-ins a minute per address, at most 10,000 addresses.
func newSignInLimiter() *signInLimiter {
	return &signInLimiter{interval: 6 * time.Second, burst: 10, max: 10_000, now: time.Now, tat: map[string]time.Time{}}
}

// take spends one attempt of key's, or says how long until it has one.
func (l *signInLimiter) take(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	tat := l.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(l.interval)
	if over := next.Sub(now) - time.Duration(l.burst)*l.interval; over > 0 {
		return false, over
	}
	if _, known := l.tat[key]; !known && len(l.tat) >= l.max {
		l.evict(now)
	}
	l.tat[key] = next
	return true, 0
}

// refund gives back the attempt a successful sign-in took.
func (l *signInLimiter) refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tat, ok := l.tat[key]; ok {
		l.tat[key] = tat.Add(-l.interval)
	}
}

// evict forgets addresses whose burst is whole again, or, if none, any one:
// a flood from many addresses cannot grow the map, nor lock others out.
func (l *signInLimiter) evict(now time.Time) {
	for k, tat := range l.tat {
		if !tat.After(now) {
			delete(l.tat, k)
		}
	}
	for k := range l.tat {
		if len(l.tat) < l.max {
			return
		}
		delete(l.tat, k)
	}
}
