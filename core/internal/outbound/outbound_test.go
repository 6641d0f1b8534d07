package outbound_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/clocktest"
)

var (
	botCheck    = &job.Error{Code: job.CodeBotCheck, Message: "sign in to confirm you're not a bot"}
	rateLimited = &job.Error{Code: job.CodeRateLimited, Message: "429", Retryable: true}
	unavailable = &job.Error{Code: job.CodeVideoUnavailable, Message: "removed"}
	ageLimited  = &job.Error{Code: job.CodeAgeRestricted, Message: "sign in to confirm your age"}
)

const cookiesText = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tsession-%s\n"

// newPool is a pool on a stopped clock, logging into the returned buffer.
func newPool(t *testing.T, cfg outbound.Config, reg prometheus.Registerer) (*outbound.Pool, *clocktest.Clock, *bytes.Buffer) {
	t.Helper()
	clock := clocktest.New()
	cfg.Now = clock.Now
	logs := &bytes.Buffer{}
	p, err := outbound.New(context.Background(), slog.New(slog.NewTextHandler(logs, nil)), cfg, nil, reg)
	require.NoError(t, err)
	return p, clock, logs
}

func pickLabels(t *testing.T, p *outbound.Pool, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := p.Pick(context.Background())
		require.NoError(t, err)
		out = append(out, l.ProxyLabel)
	}
	return out
}

func TestPickRotatesOverProxiesInTurn(t *testing.T) {
	t.Parallel()
	p, _, _ := newPool(t, outbound.Config{Proxies: []string{"http://a:1", "socks5h://b:2", " ", "http://a:1", "https://c:3"}}, nil)
	require.Equal(t, []string{"a:1", "b:2", "c:3", "a:1", "b:2", "c:3", "a:1"}, pickLabels(t, p, 7),
		"in turn, blanks and duplicates dropped")
}

func TestAnEmptyPoolGoesDirect(t *testing.T) {
	t.Parallel()
	p, _, _ := newPool(t, outbound.Config{}, nil)
	l, err := p.Pick(context.Background())
	require.NoError(t, err)
	require.Equal(t, "", l.Proxy, "no --proxy")
	require.Equal(t, outbound.DirectLabel, l.ProxyLabel)
	require.False(t, l.HasCookies())
	require.NoError(t, l.WriteCookies(filepath.Join(t.TempDir(), "cookies.txt")), "nothing to write")
	require.NoError(t, p.Report(context.Background(), l, nil))
}

// TestRefusalsRestAProxyAndOtherFailuresDoNot: a bot check rests the proxy
// for BotCheckRest and a rate limit for RateLimitRest, each doubling while
// the refusals come in a row; a removed or age-restricted video rests
// nothing; a success ends the streak.
func TestRefusalsRestAProxyAndOtherFailuresDoNot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, clock, _ := newPool(t, outbound.Config{Proxies: []string{"http://a:1", "http://b:2"}}, nil)
	start := clock.Now()

	a, err := p.Pick(ctx)
	require.NoError(t, err)
	require.Equal(t, "a:1", a.ProxyLabel)
	require.NoError(t, p.Report(ctx, a, unavailable))
	require.NoError(t, p.Report(ctx, a, ageLimited))
	require.NoError(t, p.Report(ctx, a, fmt.Errorf("download: %w", context.Canceled)))
	require.Equal(t, []string{"b:2", "a:1"}, pickLabels(t, p, 2), "per-video failures leave a proxy in turn")

	require.NoError(t, p.Report(ctx, a, fmt.Errorf("yt-dlp: %w", botCheck)))
	require.Equal(t, []string{"b:2", "b:2"}, pickLabels(t, p, 2), "a rests after a bot check")
	h := health(p, "a:1")
	require.True(t, h.Resting)
	require.Equal(t, start.Add(3*time.Hour), h.Until, "bot checks rest 3 h by default")
	require.Equal(t, job.CodeBotCheck, h.Code)

	clock.Advance(3*time.Hour - time.Second)
	require.Equal(t, []string{"b:2"}, pickLabels(t, p, 1))
	clock.Advance(time.Second)
	require.Equal(t, []string{"a:1", "b:2"}, pickLabels(t, p, 2), "back in turn once the rest is over")

	require.NoError(t, p.Report(ctx, a, botCheck))
	require.Equal(t, clock.Now().Add(6*time.Hour), health(p, "a:1").Until, "a second bot check in a row rests twice as long")
	clock.Advance(6 * time.Hour)
	require.NoError(t, p.Report(ctx, a, nil))
	require.False(t, health(p, "a:1").Resting)
	require.NoError(t, p.Report(ctx, a, rateLimited))
	require.Equal(t, clock.Now().Add(time.Hour), health(p, "a:1").Until, "a success ended the streak; rate limits rest 1 h")
	require.Equal(t, job.CodeRateLimited, health(p, "a:1").Code)

	for range 10 {
		require.NoError(t, p.Report(ctx, a, botCheck))
	}
	require.Equal(t, clock.Now().Add(24*time.Hour), health(p, "a:1").Until, "rests are capped at MaxRest")
}

func health(p *outbound.Pool, name string) outbound.EntryHealth {
	for _, h := range p.Health() {
		if h.Name == name {
			return h
		}
	}
	return outbound.EntryHealth{}
}

func TestAllRestingSaysWhenTheFirstWakes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, clock, _ := newPool(t, outbound.Config{Proxies: []string{"http://a:1", "http://b:2"}}, nil)
	a, _ := p.Pick(ctx)
	b, _ := p.Pick(ctx)
	require.NoError(t, p.Report(ctx, a, botCheck))
	clock.Advance(time.Minute)
	require.NoError(t, p.Report(ctx, b, rateLimited))

	_, err := p.Pick(ctx)
	require.ErrorIs(t, err, outbound.ErrAllResting)
	var re *outbound.RestingError
	require.ErrorAs(t, err, &re)
	require.Equal(t, clock.Now().Add(time.Hour), re.Until, "b's rate limit ends first")

	clock.Advance(time.Hour)
	require.Equal(t, []string{"b:2", "b:2"}, pickLabels(t, p, 2))
}

// TestPickSkipsTheProxiesAJobTried: the retry within an attempt goes out
// through another proxy, and when every proxy was tried Pick says so at once.
func TestPickSkipsTheProxiesAJobTried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, clock, _ := newPool(t, outbound.Config{Proxies: []string{"http://a:1", "http://b:2", "http://c:3"}}, nil)
	first, err := p.Pick(ctx)
	require.NoError(t, err)
	require.Equal(t, "a:1", first.ProxyLabel)
	_, _ = p.Pick(ctx) // another job takes b

	// Another job's success through a ends its rest before this job retries.
	require.NoError(t, p.Report(ctx, first, botCheck))
	require.NoError(t, p.Report(ctx, first, nil))
	second, err := p.Pick(ctx, first)
	require.NoError(t, err)
	require.Equal(t, "c:3", second.ProxyLabel)
	third, err := p.Pick(ctx, first, second)
	require.NoError(t, err)
	require.Equal(t, "b:2", third.ProxyLabel, "not a again, though it is in turn and not resting")
	_, err = p.Pick(ctx, first, second, third)
	var re *outbound.RestingError
	require.ErrorAs(t, err, &re)
	require.Equal(t, clock.Now(), re.Until, "nothing rests: the job may come back at once")
}

func TestProxiesFileIsReReadWhenItChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "proxies")
	write := func(text string, mtime time.Time) {
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		require.NoError(t, os.Chtimes(path, mtime, mtime))
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	write("# the office exits\nhttp://user:hunter2@a:1\n\nnot a url at all\nftp://b:2\nhttp://c:3/path\nsocks4://s:7\nsocks5://d:4  \n", t0)
	p, clock, logs := newPool(t, outbound.Config{ProxiesFile: path, Proxies: []string{"http://listed:9"}}, nil)
	require.Equal(t, []string{"listed:9", "a:1", "d:4"}, pickLabels(t, p, 3), "the list's, then the file's; bad lines skipped")
	require.Contains(t, logs.String(), "line=4")
	require.Contains(t, logs.String(), "line=5")
	require.Contains(t, logs.String(), "line=6")
	require.Contains(t, logs.String(), "line=7", "socks4: the egress proxy in front does not speak it")

	a, err := p.Pick(ctx, outbound.Lease{})
	require.NoError(t, err)
	for a.ProxyLabel != "a:1" {
		a, err = p.Pick(ctx)
		require.NoError(t, err)
	}
	require.Equal(t, "http://user:hunter2@a:1", a.Proxy, "the --proxy value keeps its credentials")
	require.NoError(t, p.Report(ctx, a, botCheck))

	write("http://user:hunter2@a:1\nhttp://e:5\nhttp://listed:9\n", t0.Add(time.Minute))
	require.NotContains(t, strings.Join(pickLabels(t, p, 3), " "), "e:5", "not re-read before Recheck")
	clock.Advance(5 * time.Second)
	require.Equal(t, []string{"listed:9", "e:5", "listed:9"}, pickLabels(t, p, 3), "re-read: d is gone, e is new, a still rests, listed is not there twice")
	require.True(t, health(p, "a:1").Resting, "an entry that stays keeps its rest")
	var names []string
	for _, h := range p.Health() {
		names = append(names, h.Name)
	}
	require.Equal(t, []string{"listed:9", "a:1", "e:5"}, names, "a proxy in the list and the file is one entry")

	require.NoError(t, os.Remove(path))
	clock.Advance(5 * time.Second)
	require.ElementsMatch(t, []string{"listed:9", "e:5"}, pickLabels(t, p, 2), "a file gone keeps the proxies last read")
	require.Contains(t, logs.String(), "keeping the proxies last read")

	require.NotContains(t, logs.String(), "hunter2", "credentials never reach the log")
	require.NotContains(t, logs.String(), "not a url at all", "nor do the lines skipped, which may hold them")
	require.NotContains(t, a.String(), "hunter2")
	var line bytes.Buffer
	slog.New(slog.NewJSONHandler(&line, nil)).Info("download", "lease", a)
	require.NotContains(t, line.String(), "hunter2")
	require.Contains(t, line.String(), `"proxy":"a:1"`)
	for _, h := range p.Health() {
		require.NotContains(t, h.Name, "hunter2")
	}
}

func TestNewRefusesABadListOrFile(t *testing.T) {
	t.Parallel()
	_, err := outbound.New(context.Background(), slog.New(slog.DiscardHandler), outbound.Config{Proxies: []string{"http://x:1", "http//user:secret@y"}}, nil, nil)
	require.ErrorContains(t, err, "entry 2")
	require.NotContains(t, err.Error(), "secret")
	_, err = outbound.New(context.Background(), slog.New(slog.DiscardHandler), outbound.Config{ProxiesFile: filepath.Join(t.TempDir(), "missing")}, nil, nil)
	require.Error(t, err)
	junk := filepath.Join(t.TempDir(), "cookies.txt")
	require.NoError(t, os.WriteFile(junk, []byte(`[{"name":"SID"}]`), 0o600))
	_, err = outbound.New(context.Background(), slog.New(slog.DiscardHandler), outbound.Config{CookiesFile: junk}, nil, nil)
	require.ErrorContains(t, err, "JSON")
}

// TestCookieFilesRotateAndRestWithTheirProxy: the flag's file and the
// database's enabled files are handed out in turn beside the proxies; a bot
// check rests the pair's cookie file too, in the table, where a second
// replica reads the rest; a disabled file is left out once the pool
// re-reads the table.
func TestCookieFilesRotateAndRestWithTheirProxy(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		ctx := context.Background()
		env := open(t)
		st := env.Store
		fileCookies := filepath.Join(t.TempDir(), "cookies.txt")
		require.NoError(t, os.WriteFile(fileCookies, []byte(fmt.Sprintf(cookiesText, "file")), 0o600))
		x, err := st.AddCookieFile(ctx, "admin:root", "x", []byte(fmt.Sprintf(cookiesText, "x")))
		require.NoError(t, err)
		_, err = st.AddCookieFile(ctx, "admin:root", "y", []byte(fmt.Sprintf(cookiesText, "y")))
		require.NoError(t, err)
		off, err := st.AddCookieFile(ctx, "admin:root", "off", []byte(fmt.Sprintf(cookiesText, "off")))
		require.NoError(t, err)
		_, err = st.SetCookieFileEnabled(ctx, "admin:root", off.ID, false)
		require.NoError(t, err)

		clock := clocktest.New()
		cfg := outbound.Config{Proxies: []string{"http://a:1", "http://b:2"}, CookiesFile: fileCookies, Now: clock.Now}
		logs := &bytes.Buffer{}
		p, err := outbound.New(ctx, slog.New(slog.NewTextHandler(logs, nil)), cfg, st, nil)
		require.NoError(t, err)

		var pairs []string
		var leases []outbound.Lease
		for range 4 {
			l, err := p.Pick(ctx)
			require.NoError(t, err)
			pairs = append(pairs, l.ProxyLabel+"+"+l.CookiesName)
			leases = append(leases, l)
		}
		require.Equal(t, []string{"a:1+--yt-dlp-cookies", "b:2+x", "a:1+y", "b:2+--yt-dlp-cookies"}, pairs, "two turns side by side; off is left out")

		// Each job gets a copy of its own file.
		dir := t.TempDir()
		require.NoError(t, leases[1].WriteCookies(filepath.Join(dir, "cookies.txt")))
		b, err := os.ReadFile(filepath.Join(dir, "cookies.txt"))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf(cookiesText, "x"), string(b))
		fi, err := os.Stat(filepath.Join(dir, "cookies.txt"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

		require.NoError(t, p.Report(ctx, leases[1], botCheck)) // b and x rest
		list, err := st.ListCookieFiles(ctx)
		require.NoError(t, err)
		xRow := byName(list, "x")
		require.NotNil(t, xRow.LastFailureAt, "a refusal is written at once")
		require.Equal(t, job.CodeBotCheck, xRow.LastFailureCode)
		require.NotContains(t, logs.String(), "session-x", "cookies never reach the log")

		for range 4 {
			l, err := p.Pick(ctx)
			require.NoError(t, err)
			require.Equal(t, "a:1", l.ProxyLabel)
			require.NotEqual(t, "x", l.CookiesName)
		}

		// A second replica (or this one restarted) reads x's rest from the table.
		other, err := outbound.New(ctx, slog.New(slog.DiscardHandler), outbound.Config{Now: clock.Now}, st, nil)
		require.NoError(t, err)
		require.True(t, health(other, "x").Resting)
		require.WithinDuration(t, clock.Now().Add(3*time.Hour), health(other, "x").Until, 0)
		for range 3 {
			l, err := other.Pick(ctx)
			require.NoError(t, err)
			require.Equal(t, "y", l.CookiesName)
		}

		// Successes are written after a refusal at once, then at most every SuccessWrite.
		clock.Advance(3 * time.Hour)
		var xl outbound.Lease
		for xl.CookiesName != "x" {
			xl, err = p.Pick(ctx)
			require.NoError(t, err)
		}
		require.NoError(t, p.Report(ctx, xl, nil))
		xRow = byName(must(st.ListCookieFiles(ctx)), "x")
		require.NotNil(t, xRow.LastSuccessAt)
		require.True(t, clock.Now().Equal(*xRow.LastSuccessAt))
		clock.Advance(time.Minute)
		require.NoError(t, p.Report(ctx, xl, nil))
		require.True(t, clock.Now().Add(-time.Minute).Equal(*byName(must(st.ListCookieFiles(ctx)), "x").LastSuccessAt), "not written again so soon")
		clock.Advance(5 * time.Minute)
		require.NoError(t, p.Report(ctx, xl, nil))
		require.True(t, clock.Now().Equal(*byName(must(st.ListCookieFiles(ctx)), "x").LastSuccessAt))

		// Disabled: left out at the next re-read (Invalidate: at once).
		_, err = st.SetCookieFileEnabled(ctx, "admin:root", x.ID, false)
		require.NoError(t, err)
		p.Invalidate(ctx)
		for range 6 {
			l, err := p.Pick(ctx)
			require.NoError(t, err)
			require.NotEqual(t, "x", l.CookiesName)
		}

		// Every cookie file resting: no pair, though proxies are free.
		for _, name := range []string{"y", outbound.FileCookiesName} {
			var l outbound.Lease
			for l.CookiesName != name {
				l, err = p.Pick(ctx)
				require.NoError(t, err)
			}
			require.NoError(t, p.Report(ctx, l, rateLimited))
			require.NoError(t, p.Report(ctx, outbound.Lease{}, botCheck), "a zero lease is ignored")
			clock.Advance(time.Minute)
		}
		_, err = p.Pick(ctx)
		var re *outbound.RestingError
		require.ErrorAs(t, err, &re)
		require.Equal(t, clock.Now().Add(-2*time.Minute).Add(time.Hour), re.Until, "y wakes first")
	})
}

func byName(fs []store.CookieFile, name string) store.CookieFile {
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	return store.CookieFile{}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestMetricsShowRestsAndOutcomesWithoutCredentials: resting per proxy by
// host:port, outcomes counted, cookie files by state.
func TestMetricsShowRestsAndOutcomesWithoutCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	cookies := filepath.Join(t.TempDir(), "cookies.txt")
	require.NoError(t, os.WriteFile(cookies, []byte(fmt.Sprintf(cookiesText, "f")), 0o600))
	p, _, _ := newPool(t, outbound.Config{Proxies: []string{"http://u:hunter2@a:1", "http://b:2"}, CookiesFile: cookies}, reg)
	a, err := p.Pick(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Report(ctx, a, nil))
	require.NoError(t, p.Report(ctx, a, unavailable))
	require.NoError(t, p.Report(ctx, a, botCheck))

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ytcaption_core_outbound_proxy_resting 1 while an outbound proxy (host:port, or direct) rests after YouTube refused a download through it.
# TYPE ytcaption_core_outbound_proxy_resting gauge
ytcaption_core_outbound_proxy_resting{proxy="a:1"} 1
ytcaption_core_outbound_proxy_resting{proxy="b:2"} 0
# HELP ytcaption_core_outbound_cookie_files Cookie files in the download pool by state: ready or resting (after a bot check or rate limit through it).
# TYPE ytcaption_core_outbound_cookie_files gauge
ytcaption_core_outbound_cookie_files{state="ready"} 0
ytcaption_core_outbound_cookie_files{state="resting"} 1
# HELP ytcaption_core_outbound_downloads_total YouTube downloads by outbound proxy (host:port or direct) and outcome: success, youtube_bot_check, youtube_rate_limited or other.
# TYPE ytcaption_core_outbound_downloads_total counter
ytcaption_core_outbound_downloads_total{outcome="other",proxy="a:1"} 1
ytcaption_core_outbound_downloads_total{outcome="success",proxy="a:1"} 1
ytcaption_core_outbound_downloads_total{outcome="youtube_bot_check",proxy="a:1"} 1
`)))
}

func TestCheckCookies(t *testing.T) {
	t.Parallel()
	const header = "# Netscape HTTP Cookie File\n"
	const cookie = ".youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tsecret-value\n"
	for _, tc := range []struct {
		name, content, code string
	}{
		{"a browser export", header + "# comment\n\n" + cookie + "#HttpOnly_" + cookie, ""},
		{"the short header, CRLF and a session cookie", "# HTTP Cookie File\r\n" + strings.ReplaceAll(strings.Replace(cookie, "1999999999", "0", 1), "\n", "\r\n"), ""},
		{"no expiry", header + strings.Replace(cookie, "1999999999", "", 1), ""},
		{"no header", cookie, job.CodeInvalidArgument},
		{"JSON", `[{"domain":".youtube.com","name":"SID","value":"secret-value"}]`, job.CodeInvalidArgument},
		{"only the header", header + "# nothing\n", job.CodeInvalidArgument},
		{"spaces, not tabs", header + strings.ReplaceAll(cookie, "\t", " "), job.CodeInvalidArgument},
		{"six fields", header + ".youtube.com\tTRUE\t/\tTRUE\t1999999999\tsecret-value\n", job.CodeInvalidArgument},
		{"a word for an expiry", header + strings.Replace(cookie, "1999999999", "never", 1), job.CodeInvalidArgument},
		{"NUL", header + cookie + "\x00", job.CodeInvalidArgument},
		{"empty", "", job.CodeInvalidArgument},
		{"too large", header + strings.Repeat(cookie, 10000), "request_too_large"},
	} {
		err := outbound.CheckCookies([]byte(tc.content))
		if tc.code == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.Equal(t, tc.code, job.CodeOf(err), tc.name)
		require.NotContains(t, err.Error(), "secret-value", "%s: the message never quotes the file", tc.name)
	}
}

// FuzzCheckCookies: any content is judged without a panic, and a refusal
// never quotes a cookie line.
func FuzzCheckCookies(f *testing.F) {
	f.Add([]byte("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t1\tSID\tv\n"))
	f.Add([]byte("# HTTP Cookie File\r\n#HttpOnly_a\tb\tc\td\t\tf\tg"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := outbound.CheckCookies(b)
		if err == nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) > 40 {
				require.NotContains(t, err.Error(), line)
			}
		}
	})
}

// TestDoTriesTheRoutesInTurn: a try refused with a bot check rests its route
// and the next is tried at once, in a directory of its own; any other
// outcome ends Do; an open breaker is no try; with every route resting Do
// says when the first wakes. Each try gets its own copy of the cookies.
func TestDoTriesTheRoutesInTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, clock, _ := newPool(t, outbound.Config{Proxies: []string{"http://a:1", "http://b:2"}}, nil)
	dir := t.TempDir()

	type try struct{ proxy, cookies, dir string }
	var tries []try
	answers := []error{botCheck, unavailable}
	err := p.Do(ctx, dir, func(proxy, cookies, sub string) error {
		tries = append(tries, try{proxy, cookies, sub})
		err := answers[0]
		answers = answers[1:]
		return err
	})
	require.ErrorIs(t, err, unavailable, "a video's own failure ends Do")
	require.Len(t, tries, 2, "the bot check moved on to the next route, the removed video did not")
	require.Equal(t, []string{"http://a:1", "http://b:2"}, []string{tries[0].proxy, tries[1].proxy})
	require.NotEqual(t, tries[0].dir, tries[1].dir)
	for _, tr := range tries {
		require.Equal(t, dir, filepath.Dir(tr.dir), "each try's directory is inside dir")
		require.Empty(t, tr.cookies, "no cookie files: none")
	}
	require.True(t, health(p, "a:1").Resting)

	// An open breaker asked nothing of the site: b is not rested for it.
	require.ErrorIs(t, p.Do(ctx, dir, func(string, string, string) error { return breaker.ErrOpen }), breaker.ErrOpen)
	require.False(t, health(p, "b:2").Resting)

	// Both refused: Do says when the first wakes.
	err = p.Do(ctx, dir, func(string, string, string) error { return rateLimited })
	var re *outbound.RestingError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, outbound.ErrAllResting)
	require.Equal(t, health(p, "b:2").Until, re.Until, "b, resting 1 h for a rate limit, wakes before a (3 h for a bot check)")
	require.True(t, re.Until.After(clock.Now()))

	// With a cookie file, each try reads its own private copy.
	cookies := filepath.Join(t.TempDir(), "cookies.txt")
	require.NoError(t, os.WriteFile(cookies, []byte(fmt.Sprintf(cookiesText, "f")), 0o600))
	p, _, _ = newPool(t, outbound.Config{CookiesFile: cookies}, nil)
	require.NoError(t, p.Do(ctx, dir, func(_, copied, sub string) error {
		require.Equal(t, sub, filepath.Dir(copied))
		b, err := os.ReadFile(copied)
		require.NoError(t, err)
		require.Contains(t, string(b), "session-f")
		st, err := os.Stat(copied)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "cookies are secrets")
		return nil
	}))
}
