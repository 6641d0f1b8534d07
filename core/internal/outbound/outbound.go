// Package outbound is how the download stage reaches YouTube without being
// blocked: a pool of outbound proxies and a pool of cookie files, handed out
// in turn, a (proxy, cookies) pair per download, each entry resting when
// YouTube pushes back through it.
//
// Cloud addresses are where YouTube blocks hardest: one address and one
// signed-in session for a whole deployment is soon "Sign in to confirm
// you're not a bot" for every job. Spreading downloads over several exits
// and sessions, and taking a refused one out of turn for a while, keeps the
// rest working.
//
// Proxies come from a list (--yt-dlp-proxies) and a file
// (--yt-dlp-proxies-file), which is re-read when it changes so operators
// rotate proxies without a restart; no proxy at all is one implicit "direct"
// entry. Cookie files come from the database (admins add them through the
// admin API or the dashboard) and from --yt-dlp-cookies.
//
// An entry rests after a download through it drew youtube_bot_check or
// youtube_rate_limited: those are YouTube's verdict on the address or the
// session. Every other failure (a private, removed, age-restricted or
// members-only video; a network error) is about the video or the moment, not
// the entry, and leaves it in turn. Age and login refusals in particular are
// per video: another cookie file would not be signed in to a different
// verdict, so they never rest a cookie file.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/breaker"
)

// ErrAllResting is what Pick returns, wrapped in a *RestingError, when no
// entry may be used now: the download stage parks the job until Until
// rather than spend an attempt on an address YouTube has refused.
var ErrAllResting = errors.New("every outbound proxy or cookie file is resting")

// RestingError says when the first resting entry wakes.
type RestingError struct {
	Until time.Time
}

func (e *RestingError) Error() string {
	return fmt.Sprintf("%v until %s", ErrAllResting, e.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrAllResting) match.
func (e *RestingError) Is(target error) bool { return target == ErrAllResting }

// Config tunes a Pool. Zero durations take the defaults.
type Config struct {
	// Proxies are proxy URLs (http, https, socks5, socks5h: what the egress
	// proxy in front of them speaks),
	// credentials allowed: --yt-dlp-proxies.
	Proxies []string
	// ProxiesFile holds more, one a line, # comments: --yt-dlp-proxies-file.
	// A line that is not a proxy URL is logged and skipped.
	ProxiesFile string
	// CookiesFile is a cookies file read from disk (--yt-dlp-cookies), an
	// entry of the cookie pool beside the database's.
	CookiesFile string

	// RateLimitRest is how long an entry rests after youtube_rate_limited;
	// default 1 h, the time YouTube's 429s on a session take to lift.
	RateLimitRest time.Duration
	// BotCheckRest is how long an entry rests after youtube_bot_check;
	// default 3 h. A flagged address stays flagged for hours, so retrying
	// it sooner only spends jobs; a probe after the rest costs one download,
	// which another entry then retries.
	BotCheckRest time.Duration
	// MaxRest caps the rest, which doubles with every refusal in a row
	// without a success between (an address YouTube has blocked for good is
	// probed ever less often); default 24 h.
	MaxRest time.Duration
	// Recheck is how often Pick looks for a changed proxies or cookies file
	// and for the database's cookie files; default 5 s.
	Recheck time.Duration
	// SuccessWrite is how often, at most, a cookie file's last success is
	// written to the database while it keeps succeeding; default 5 min. A
	// success after a refusal is written at once: it ends the rest other
	// replicas read from the table.
	SuccessWrite time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.RateLimitRest <= 0 {
		c.RateLimitRest = time.Hour
	}
	if c.BotCheckRest <= 0 {
		c.BotCheckRest = 3 * time.Hour
	}
	if c.MaxRest <= 0 {
		c.MaxRest = 24 * time.Hour
	}
	if c.Recheck <= 0 {
		c.Recheck = 5 * time.Second
	}
	if c.SuccessWrite <= 0 {
		c.SuccessWrite = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Entry kinds, as Health reports them.
const (
	KindProxy   = "proxy"
	KindCookies = "cookies"
)

// DirectLabel names the implicit entry of an empty proxy pool.
const DirectLabel = "direct"

// FileCookiesName names the --yt-dlp-cookies entry.
const FileCookiesName = "--yt-dlp-cookies"

// entry is a proxy or a cookie file and what the pool has seen through it.
type entry struct {
	kind  string
	key   string // identity across reloads: the proxy URL, "db:"+id or "file"
	label string // what logs, metrics and pages show: host:port, "direct", a file's name
	proxy string // the URL for --proxy, credentials and all; "" for direct

	dbID    string // a database cookie file's id
	content []byte // a cookie file's content

	restUntil            time.Time
	restCode             string
	streak               int // refusals in a row
	lastSuccess          time.Time
	lastFailure          time.Time
	lastCode             string
	successWritten       time.Time // when the last success was written to the database
	failedSinceSuccessDB bool      // the table says a refusal came after the last success
}

func (e *entry) resting(now time.Time) bool { return now.Before(e.restUntil) }

// Lease is what Pick hands out: the proxy and cookies for one download.
// Report its outcome.
type Lease struct {
	// Proxy is the --proxy value, "" to go direct. It may hold credentials:
	// log the Lease (or ProxyLabel), never Proxy.
	Proxy string
	// ProxyLabel is the proxy's host:port, or "direct".
	ProxyLabel string
	// CookiesName names the cookie file, "" when the download goes without.
	CookiesName string

	cookies   []byte
	proxyKey  string
	cookieKey string
}

// HasCookies says whether the download takes a cookies file.
func (l Lease) HasCookies() bool { return l.cookieKey != "" }

// WriteCookies writes the lease's cookies to path, readable by this user
// alone, for yt-dlp's --cookies: a copy per job, since yt-dlp rewrites the
// file it is given. It writes nothing when the lease has no cookies.
func (l Lease) WriteCookies(path string) error {
	if !l.HasCookies() {
		return nil
	}
	if err := os.WriteFile(path, l.cookies, 0o600); err != nil {
		return fmt.Errorf("write cookies for yt-dlp: %w", err)
	}
	return nil
}

// String names the lease without its secrets.
func (l Lease) String() string {
	if l.CookiesName == "" {
		return "proxy " + l.ProxyLabel + ", no cookies"
	}
	return "proxy " + l.ProxyLabel + ", cookies " + l.CookiesName
}

// LogValue keeps credentials and cookies out of logs.
func (l Lease) LogValue() slog.Value {
	return slog.GroupValue(slog.String("proxy", l.ProxyLabel), slog.String("cookies", l.CookiesName))
}

// Do runs try through the routes in turn. Each try gets the next proxy and
// cookie file not yet tried — the --proxy value ("" to go direct) and the
// path of its own copy of the cookies ("" for none) — and a directory of
// its own inside dir, so what a refused try left stays out of the next. A
// try refused with a bot check or a rate limit rests its route and the next
// one is tried at once; any other outcome ends Do with it. With every route
// resting Do returns a *RestingError (errors.Is ErrAllResting). A try that
// fails with breaker.ErrOpen asked nothing of the site: it is not reported.
func (p *Pool) Do(ctx context.Context, dir string, try func(proxy, cookiesFile, dir string) error) error {
	var tried []Lease
	for {
		l, err := p.Pick(ctx, tried...)
		if err != nil {
			return err
		}
		tried = append(tried, l)
		sub, err := os.MkdirTemp(dir, "route-")
		if err != nil {
			return fmt.Errorf("make a directory for the route: %w", err)
		}
		var cookies string
		if l.HasCookies() {
			cookies = filepath.Join(sub, "route-cookies.txt")
			if err := l.WriteCookies(cookies); err != nil {
				return err
			}
		}
		err = try(l.Proxy, cookies, sub)
		if errors.Is(err, breaker.ErrOpen) {
			return err
		}
		if rerr := p.Report(ctx, l, err); rerr != nil {
			p.log.WarnContext(ctx, "record the route's outcome", "route", l, "err", rerr)
		}
		if p.baseRest(job.CodeOf(err)) == 0 {
			return err
		}
		p.log.InfoContext(ctx, "route refused: trying the next", "route", l, "code", job.CodeOf(err))
	}
}

// Summary counts the pool's entries and how many rest: what /health/ready
// shows (the admin API's /v1/admin/outbound has each entry).
type Summary struct {
	Proxies            int `json:"proxies"` // "direct" counts: it is the route when no proxy is set
	ProxiesResting     int `json:"proxies_resting"`
	CookieFiles        int `json:"cookie_files"`
	CookieFilesResting int `json:"cookie_files_resting"`
}

// Summary counts the entries as Health reports them.
func (p *Pool) Summary() Summary {
	var s Summary
	for _, e := range p.Health() {
		switch e.Kind {
		case KindProxy:
			s.Proxies++
			if e.Resting {
				s.ProxiesResting++
			}
		case KindCookies:
			s.CookieFiles++
			if e.Resting {
				s.CookieFilesResting++
			}
		}
	}
	return s
}

// EntryHealth is one entry as Health reports it.
type EntryHealth struct {
	Kind        string // KindProxy or KindCookies
	Name        string // host:port, "direct", or the cookie file's name
	ID          string // a database cookie file's id; "" otherwise
	Resting     bool
	Until       time.Time // when it wakes, if Resting
	Code        string    // the refusal that sent it to rest, if Resting
	LastSuccess time.Time // as this replica saw it; zero: not since start
	LastFailure time.Time
	LastCode    string // the last refusal's code
}

// watched is a file the pool re-reads when its modification time or size
// changes.
type watched struct {
	path    string
	modTime time.Time
	size    int64
}

// changed stats the file: whether it differs from the last read.
func (w *watched) changed() (bool, error) {
	st, err := os.Stat(w.path)
	if err != nil {
		return false, err
	}
	return !st.ModTime().Equal(w.modTime) || st.Size() != w.size, nil
}

// read reads the file and remembers its stat.
func (w *watched) read() ([]byte, error) {
	st, err := os.Stat(w.path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(w.path)
	if err != nil {
		return nil, err
	}
	w.modTime, w.size = st.ModTime(), st.Size()
	return b, nil
}

// Pool hands out (proxy, cookies) pairs in turn. It starts no goroutine:
// it re-reads its files and the database's cookie files on Pick, at most
// every Recheck.
type Pool struct {
	log   *slog.Logger
	cfg   Config
	store *store.Store // nil: no cookie files from the database

	refreshing sync.Mutex // one refresh at a time; others pick from what is loaded

	mu         sync.Mutex
	listed     []*entry // from cfg.Proxies
	fromFile   []*entry // from cfg.ProxiesFile
	direct     *entry
	cookieFile *entry   // from cfg.CookiesFile; nil: none
	dbCookies  []*entry // enabled cookie files in the database, by name
	nextProxy  int
	nextCookie int
	checked    time.Time // when the files and the database were last looked at
	stale      bool      // refresh at the next Pick, due or not
	proxyFile  *watched
	cookieSrc  *watched

	outcomes *prometheus.CounterVec
}

// New loads the pool's proxies and cookie files: an unreadable file or a
// malformed URL in cfg.Proxies is an error (a typo should stop a start, not
// leave a deployment going direct); later, a file that disappears or turns
// bad keeps the pool on what it last read. st may be nil (no cookie files
// from the database); reg may be nil (no metrics).
func New(ctx context.Context, log *slog.Logger, cfg Config, st *store.Store, reg prometheus.Registerer) (*Pool, error) {
	cfg.defaults()
	p := &Pool{log: log, cfg: cfg, store: st, direct: &entry{kind: KindProxy, key: "direct", label: DirectLabel},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ytcaption_core_outbound_downloads_total",
			Help: "YouTube downloads by outbound proxy (host:port or direct) and outcome: success, youtube_bot_check, youtube_rate_limited or other.",
		}, []string{"proxy", "outcome"})}
	seen := map[string]bool{}
	for i, raw := range cfg.Proxies {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		e, err := parseProxy(raw)
		if err != nil {
			return nil, fmt.Errorf("--yt-dlp-proxies entry %d: %w", i+1, err)
		}
		if !seen[e.key] {
			seen[e.key] = true
			p.listed = append(p.listed, e)
		}
	}
	if cfg.ProxiesFile != "" {
		p.proxyFile = &watched{path: cfg.ProxiesFile}
		if err := p.loadProxiesFile(); err != nil {
			return nil, err
		}
	}
	if cfg.CookiesFile != "" {
		p.cookieSrc = &watched{path: cfg.CookiesFile}
		b, err := p.cookieSrc.read()
		if err != nil {
			return nil, fmt.Errorf("read --yt-dlp-cookies: %w", err)
		}
		if err := CheckCookies(b); err != nil {
			return nil, fmt.Errorf("--yt-dlp-cookies %s: %w", cfg.CookiesFile, err)
		}
		p.cookieFile = &entry{kind: KindCookies, key: "file", label: FileCookiesName, content: b}
	}
	if err := p.loadDBCookies(ctx); err != nil {
		return nil, err
	}
	p.checked = cfg.Now()
	if reg != nil {
		reg.MustRegister(p.outcomes, collector{p})
	}
	log.InfoContext(ctx, "outbound pool", "proxies", p.proxyLabels(), "cookie_files", p.cookieCount())
	return p, nil
}

// parseProxy reads one proxy URL. Its errors never quote the URL: it may
// hold a password.
func parseProxy(raw string) (*entry, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, errors.New("not a proxy URL: the scheme must be http, https, socks5 or socks5h")
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("not a proxy URL: scheme://[user:password@]host[:port] and nothing more")
	}
	return &entry{kind: KindProxy, key: raw, label: u.Host, proxy: raw}, nil
}

// loadProxiesFile (re)reads the proxies file, keeping what the pool knows
// of entries that stay.
func (p *Pool) loadProxiesFile() error {
	b, err := p.proxyFile.read()
	if err != nil {
		return fmt.Errorf("read --yt-dlp-proxies-file: %w", err)
	}
	old := map[string]*entry{}
	p.mu.Lock()
	for _, e := range p.fromFile {
		old[e.key] = e
	}
	p.mu.Unlock()
	var next []*entry
	seen := map[string]bool{}
	for _, e := range p.listed { // in the list and the file: one entry, the list's
		seen[e.key] = true
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseProxy(line)
		if err != nil {
			p.log.Warn("proxies file line skipped", "file", p.proxyFile.path, "line", i+1, "err", err)
			continue
		}
		if seen[e.key] {
			continue
		}
		seen[e.key] = true
		if o := old[e.key]; o != nil {
			e = o
		}
		next = append(next, e)
	}
	p.mu.Lock()
	p.fromFile = next
	p.mu.Unlock()
	return nil
}

// loadDBCookies reads the enabled cookie files from the database, their
// content only when new (a file's content never changes), and carries over
// what the pool knows of each — or what the table says, when another replica
// (or this one before a restart) saw YouTube refuse it.
func (p *Pool) loadDBCookies(ctx context.Context) error {
	if p.store == nil {
		return nil
	}
	files, err := p.store.ListCookieFiles(ctx)
	if err != nil {
		return fmt.Errorf("load cookie files: %w", err)
	}
	old := map[string]*entry{}
	p.mu.Lock()
	for _, e := range p.dbCookies {
		old[e.key] = e
	}
	p.mu.Unlock()
	var next []*entry
	for _, f := range files {
		if !f.Enabled {
			continue
		}
		e := old["db:"+f.ID]
		if e == nil {
			content, err := p.store.CookieFileContent(ctx, f.ID)
			if job.CodeOf(err) == job.CodeNotFound {
				continue // deleted since the list
			}
			if err != nil {
				return fmt.Errorf("load cookie file %s: %w", f.Name, err)
			}
			e = &entry{kind: KindCookies, key: "db:" + f.ID, dbID: f.ID, label: f.Name, content: content}
		}
		next = append(next, e)
		p.mu.Lock()
		p.fromTable(e, f)
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.dbCookies = next
	p.mu.Unlock()
	return nil
}

// fromTable merges the table's outcomes into e: a refusal after the last
// success rests the file until the refusal's rest is over.
func (p *Pool) fromTable(e *entry, f store.CookieFile) {
	if f.LastSuccessAt != nil && f.LastSuccessAt.After(e.lastSuccess) {
		e.lastSuccess = *f.LastSuccessAt
	}
	e.failedSinceSuccessDB = false
	if f.LastFailureAt == nil || (f.LastSuccessAt != nil && !f.LastFailureAt.After(*f.LastSuccessAt)) {
		return
	}
	e.failedSinceSuccessDB = true
	if f.LastFailureAt.After(e.lastFailure) {
		e.lastFailure, e.lastCode = *f.LastFailureAt, f.LastFailureCode
	}
	if rest := p.baseRest(f.LastFailureCode); rest > 0 {
		if until := f.LastFailureAt.Add(rest); until.After(e.restUntil) {
			e.restUntil, e.restCode = until, f.LastFailureCode
			e.streak = max(e.streak, 1)
		}
	}
}

// baseRest is the first rest after a refusal with code; 0: code rests nothing.
func (p *Pool) baseRest(code string) time.Duration {
	switch code {
	case job.CodeBotCheck:
		return p.cfg.BotCheckRest
	case job.CodeRateLimited:
		return p.cfg.RateLimitRest
	}
	return 0
}

// Invalidate re-reads the files and the database now, due or not (or at
// the next Pick, if a re-read is under way): the admin API calls it after
// changing a cookie file, so this replica uses the change at once — others
// within Recheck.
func (p *Pool) Invalidate(ctx context.Context) {
	p.mu.Lock()
	p.stale = true
	p.mu.Unlock()
	p.refresh(ctx)
}

// refresh re-reads what changed, if a check is due. A failure is logged and
// the pool goes on with what it has: a download with a proxy list a few
// seconds old beats none.
func (p *Pool) refresh(ctx context.Context) {
	if !p.refreshing.TryLock() {
		return // another Pick is at it
	}
	defer p.refreshing.Unlock()
	now := p.cfg.Now()
	p.mu.Lock()
	due := p.stale || !now.Before(p.checked.Add(p.cfg.Recheck))
	if due {
		p.checked, p.stale = now, false
	}
	p.mu.Unlock()
	if !due {
		return
	}
	if p.proxyFile != nil {
		changed, err := p.proxyFile.changed()
		if err == nil && changed {
			err = p.loadProxiesFile()
			if err == nil {
				p.log.InfoContext(ctx, "proxies file re-read", "file", p.proxyFile.path, "proxies", p.proxyLabels())
			}
		}
		if err != nil {
			p.log.WarnContext(ctx, "proxies file unreadable; keeping the proxies last read", "err", err)
		}
	}
	if p.cookieSrc != nil {
		changed, err := p.cookieSrc.changed()
		var b []byte
		if err == nil && changed {
			if b, err = p.cookieSrc.read(); err == nil {
				err = CheckCookies(b)
			}
			if err == nil {
				p.mu.Lock()
				p.cookieFile.content = b
				p.mu.Unlock()
				p.log.InfoContext(ctx, "cookies file re-read", "file", p.cookieSrc.path)
			}
		}
		if err != nil {
			p.log.WarnContext(ctx, "cookies file unreadable or invalid; keeping the cookies last read", "file", p.cookieSrc.path, "err", err)
		}
	}
	if err := p.loadDBCookies(ctx); err != nil {
		p.log.WarnContext(ctx, "cookie files not re-read; keeping those last read", "err", err)
	}
}

// proxies is the proxy pool: the list's, the file's, or direct. p.mu held.
func (p *Pool) proxies() []*entry {
	if len(p.listed)+len(p.fromFile) == 0 {
		return []*entry{p.direct}
	}
	return append(slices.Clip(p.listed), p.fromFile...)
}

// cookies is the cookie pool. p.mu held.
func (p *Pool) cookies() []*entry {
	if p.cookieFile == nil {
		return p.dbCookies
	}
	return append([]*entry{p.cookieFile}, p.dbCookies...)
}

// Pick hands out the next usable (proxy, cookies) pair: proxies in turn,
// cookie files in turn, each skipping those resting. Proxies of the leases
// in tried are skipped too: a download refused through one proxy is retried
// within the same attempt through another, never the same. With cookie files
// configured every pair takes one: a deployment that needs them is not sent
// out without. When nothing can be picked it returns a *RestingError
// (errors.Is ErrAllResting) with the time the first entry wakes — now, when
// the only ones left were tried.
func (p *Pool) Pick(ctx context.Context, tried ...Lease) (Lease, error) {
	p.refresh(ctx)
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	skip := map[string]bool{}
	for _, l := range tried {
		skip[l.proxyKey] = true
	}
	proxies := p.proxies()
	pi, pw := pick(proxies, p.nextProxy, now, skip)
	cookies := p.cookies()
	ci, cw := -1, time.Time{}
	if len(cookies) > 0 {
		ci, cw = pick(cookies, p.nextCookie, now, nil)
	}
	switch {
	case pi < 0 && len(cookies) > 0 && ci < 0:
		return Lease{}, &RestingError{Until: latest(pw, cw)}
	case pi < 0:
		return Lease{}, &RestingError{Until: pw}
	case len(cookies) > 0 && ci < 0:
		return Lease{}, &RestingError{Until: cw}
	}
	pe := proxies[pi]
	p.nextProxy = (pi + 1) % len(proxies)
	l := Lease{Proxy: pe.proxy, ProxyLabel: pe.label, proxyKey: pe.key}
	if ci >= 0 {
		ce := cookies[ci]
		p.nextCookie = (ci + 1) % len(cookies)
		l.CookiesName, l.cookieKey, l.cookies = ce.label, ce.key, ce.content
	}
	return l, nil
}

// pick is the first entry from next on, in turn, that is neither resting
// nor skipped, or -1 and the time the first resting one wakes (now, if
// only skipped ones are left).
func pick(es []*entry, next int, now time.Time, skip map[string]bool) (int, time.Time) {
	var wake time.Time
	for k := range es {
		i := (next + k) % len(es)
		e := es[i]
		switch {
		case e.resting(now):
			if wake.IsZero() || e.restUntil.Before(wake) {
				wake = e.restUntil
			}
		case skip[e.key]:
		default:
			return i, time.Time{}
		}
	}
	if wake.IsZero() {
		wake = now
	}
	return -1, wake
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Outcomes as ytcaption_core_outbound_downloads_total counts them.
const (
	outcomeSuccess = "success"
	outcomeOther   = "other"
)

// Report records how the download through l went: nil for a file
// downloaded, else the download's error. youtube_bot_check and
// youtube_rate_limited rest the lease's proxy and cookie file; a success ends
// their rests and their streaks; anything else says nothing about them. A
// cancelled download is not counted at all. Cookie files' outcomes are
// written to the database — refusals at once, successes at most every
// SuccessWrite — and the error is that write's (the pool has recorded the
// outcome either way).
func (p *Pool) Report(ctx context.Context, l Lease, err error) error {
	if errors.Is(err, context.Canceled) || l.proxyKey == "" {
		return nil
	}
	now := p.cfg.Now()
	code, outcome := "", outcomeSuccess
	if err != nil {
		code, outcome = job.CodeOf(err), outcomeOther
		if p.baseRest(code) > 0 {
			outcome = code
		}
	}
	p.outcomes.WithLabelValues(l.ProxyLabel, outcome).Inc()
	if outcome == outcomeOther {
		return nil
	}

	p.mu.Lock()
	var ce *entry
	for _, e := range p.proxies() {
		if e.key == l.proxyKey {
			p.record(e, now, code)
		}
	}
	for _, e := range p.cookies() {
		if e.key == l.cookieKey {
			ce = e
			p.record(e, now, code)
		}
	}
	write := false
	var id string
	if ce != nil && ce.dbID != "" {
		id = ce.dbID
		write = code != "" || ce.failedSinceSuccessDB || !now.Before(ce.successWritten.Add(p.cfg.SuccessWrite))
		if write && code == "" {
			ce.successWritten, ce.failedSinceSuccessDB = now, false
		}
		if write && code != "" {
			ce.failedSinceSuccessDB = true
		}
	}
	p.mu.Unlock()

	if code != "" {
		// Warn: the pool works around it; an operator acts only when every
		// entry rests, which the parked jobs and the metrics show.
		p.log.WarnContext(ctx, "outbound entry resting", "lease", l, "code", code)
	}
	if write && p.store != nil {
		return p.store.RecordCookieOutcome(ctx, id, now, code)
	}
	return nil
}

// record applies an outcome to e. p.mu held.
func (p *Pool) record(e *entry, now time.Time, code string) {
	if code == "" {
		e.lastSuccess, e.streak, e.restUntil, e.restCode = now, 0, time.Time{}, ""
		return
	}
	e.lastFailure, e.lastCode = now, code
	e.streak++
	rest := p.baseRest(code)
	for i := 1; i < e.streak && rest < p.cfg.MaxRest; i++ {
		rest *= 2
	}
	rest = min(rest, p.cfg.MaxRest)
	if until := now.Add(rest); until.After(e.restUntil) {
		e.restUntil, e.restCode = until, code
	}
}

// Health is every entry's state now: proxies in turn order, then cookie
// files (the --yt-dlp-cookies one first). The admin API's fleet view and
// core's doctor read it.
func (p *Pool) Health() []EntryHealth {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []EntryHealth
	for _, e := range append(p.proxies(), p.cookies()...) {
		h := EntryHealth{Kind: e.kind, Name: e.label, ID: e.dbID, LastSuccess: e.lastSuccess, LastFailure: e.lastFailure, LastCode: e.lastCode}
		if e.resting(now) {
			h.Resting, h.Until, h.Code = true, e.restUntil, e.restCode
		}
		out = append(out, h)
	}
	return out
}

func (p *Pool) proxyLabels() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.proxies() {
		out = append(out, e.label)
	}
	return out
}

func (p *Pool) cookieCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.cookies())
}

// collector exports the pool's state at scrape time: entries come and go
// with the proxies file and the cookie files, and rests end by the clock.
type collector struct{ p *Pool }

var (
	proxyRestingDesc = prometheus.NewDesc("ytcaption_core_outbound_proxy_resting",
		"1 while an outbound proxy (host:port, or direct) rests after YouTube refused a download through it.", []string{"proxy"}, nil)
	cookieFilesDesc = prometheus.NewDesc("ytcaption_core_outbound_cookie_files",
		"Cookie files in the download pool by state: ready or resting (after a bot check or rate limit through it).", []string{"state"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- proxyRestingDesc
	ch <- cookieFilesDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ready, resting := 0, 0
	seen := map[string]bool{}
	for _, h := range c.p.Health() {
		switch h.Kind {
		case KindProxy:
			if seen[h.Name] { // two URLs, one host:port (other credentials)
				continue
			}
			seen[h.Name] = true
			v := 0.0
			if h.Resting {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(proxyRestingDesc, prometheus.GaugeValue, v, h.Name)
		case KindCookies:
			if h.Resting {
				resting++
			} else {
				ready++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(cookieFilesDesc, prometheus.GaugeValue, float64(ready), "ready")
	ch <- prometheus.MustNewConstMetric(cookieFilesDesc, prometheus.GaugeValue, float64(resting), "resting")
}
