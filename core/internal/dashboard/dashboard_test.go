package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// testDashboard is the dashboard on a mux, on an SQLite store holding one
// admin, with the sign-in limiter on a clock the test moves.
type testDashboard struct {
	mux   *http.ServeMux
	d     *Dashboard
	key   string // the admin's API key
	mu    sync.Mutex
	clock time.Time
}

func newTestDashboard(t *testing.T) *testDashboard {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "ytcaption.db"))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	_, err = migrations.Migrate(ctx, db)
	require.NoError(t, err)
	st := store.New(db)
	u, err := st.EnsureUser(ctx, "root", store.RoleAdmin)
	require.NoError(t, err)
	key, err := st.CreateAPIKey(ctx, u.ID)
	require.NoError(t, err)
	td := &testDashboard{mux: http.NewServeMux(), key: key, clock: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	td.d = New(slog.New(slog.DiscardHandler), st, nil)
	td.d.signIns.now = func() time.Time { td.mu.Lock(); defer td.mu.Unlock(); return td.clock }
	td.d.Register(td.mux)
	return td
}

func (td *testDashboard) advance(d time.Duration) {
	td.mu.Lock()
	defer td.mu.Unlock()
	td.clock = td.clock.Add(d)
}

// signIn posts the sign-in form from addr.
func (td *testDashboard) signIn(addr, key, next string) *http.Response {
	form := url.Values{"key": {key}, "next": {next}}
	req := httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	td.mux.ServeHTTP(rec, req)
	return rec.Result()
}

// offSite says whether a browser would leave the site for Location loc.
func offSite(loc string) bool {
	u, err := url.Parse(loc)
	return err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(loc, "//") || strings.ContainsAny(loc, "\\\t\r\n")
}

// TestSignInRedirectStaysOnTheDashboard throws open-redirect payloads at
// the sign-in's next parameter: a successful sign-in always lands on a
// page under /admin/ of this site.
func TestSignInRedirectStaysOnTheDashboard(t *testing.T) {
	t.Parallel()
	td := newTestDashboard(t)
	for _, next := range []string{
		"/admin/../%5Cevil.example", "/admin/../\\evil.example", "/\\evil.example", "//evil.example", "///evil.example",
		"/admin/..%2F..%2F/evil", "/admin/%2e%2e/%5cevil", "/admin/%2E%2E/%2E%2E//evil.example", "https://evil.example/admin/",
		"http:/admin/", "javascript:alert(1)//admin/", "/admin/\t/evil", "/admin/\r\nLocation: //evil", "/admin/%0d%0aSet-Cookie:x=1",
		"/admin/%252e%252e/%252fevil.example", "/admin//evil.example", "/admin/..", "/adminx/", "admin/", " /admin/", "",
		"/%2Fevil.example/admin/", "/admin/\\\\evil.example", "/admin/%5C%5Cevil.example", "/admin/jobs/../../evil",
		"\\/evil.example/admin/", "/admin/\x00/x", "/admin/@evil.example", "/admin/?next=//evil#//evil",
	} {
		resp := td.signIn("192.0.2.1:1234", td.key, next)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "next %q", next)
		loc := resp.Header.Get("Location")
		require.False(t, offSite(loc), "next %q: Location %q leaves the site", next, loc)
		require.True(t, strings.HasPrefix(loc, "/admin/"), "next %q: Location %q", next, loc)
		u, err := url.Parse(loc)
		require.NoError(t, err)
		require.Equal(t, u.Path, "/"+strings.TrimLeft(u.Path, "/"), "one leading slash: %q", loc)
	}
	for next, want := range map[string]string{
		"/admin/":                           "/admin/",
		"/admin/jobs?status=failed&user=b":  "/admin/jobs?status=failed&user=b",
		"/admin/jobs/0b6e0a4c-9a43-4cb1":    "/admin/jobs/0b6e0a4c-9a43-4cb1",
		"/admin/fleet/":                     "/admin/fleet/",
		"/admin/jobs?q=http%3A%2F%2Fa.b%2F": "/admin/jobs?q=http%3A%2F%2Fa.b%2F",
	} {
		resp := td.signIn("192.0.2.1:1234", td.key, next)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, want, resp.Header.Get("Location"), "a page of the dashboard's is kept")
	}

	// The sign-in page does not carry a refused next into its form either.
	req := httptest.NewRequest(http.MethodGet, "/admin/login?next="+url.QueryEscape("//evil.example"), nil)
	rec := httptest.NewRecorder()
	td.mux.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotContains(t, rec.Body.String(), "evil.example")
	require.Contains(t, rec.Body.String(), `name="next" value="/admin/"`)
}

// TestSignInAttemptsAreLimitedPerAddress: ten failed sign-ins from one
// address, then 429 with Retry-After — even with the right key — while
// other addresses sign in; one more attempt every 6 s; successes are free.
func TestSignInAttemptsAreLimitedPerAddress(t *testing.T) {
	t.Parallel()
	td := newTestDashboard(t)
	const attacker = "198.51.100.7:5555"
	for i := range 10 {
		require.Equal(t, http.StatusUnauthorized, td.signIn(attacker, "ytc_guess", "").StatusCode, "attempt %d", i+1)
	}
	resp := td.signIn(attacker, "ytc_guess", "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "6", resp.Header.Get("Retry-After"))
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), "the page's headers are sent with its status")
	require.Equal(t, http.StatusTooManyRequests, td.signIn(attacker, td.key, "").StatusCode, "limited before the key is looked at")
	require.Equal(t, http.StatusTooManyRequests, td.signIn("198.51.100.7:6666", "ytc_guess", "").StatusCode, "another port, the same address")

	require.Equal(t, http.StatusSeeOther, td.signIn("203.0.113.9:1", td.key, "").StatusCode, "other addresses are not locked out")
	require.Equal(t, http.StatusUnauthorized, td.signIn("[2001:db8:1:2::1]:1", "ytc_guess", "").StatusCode)

	td.advance(6 * time.Second)
	require.Equal(t, http.StatusUnauthorized, td.signIn(attacker, "ytc_guess", "").StatusCode, "one attempt per 6 s")
	require.Equal(t, http.StatusTooManyRequests, td.signIn(attacker, "ytc_guess", "").StatusCode)

	// An IPv6 client is limited by its /64.
	for i := range 10 {
		require.Equal(t, http.StatusUnauthorized, td.signIn("[2001:db8:aa:bb::"+string(rune('1'+i%9))+"]:1", "ytc_guess", "").StatusCode)
	}
	require.Equal(t, http.StatusTooManyRequests, td.signIn("[2001:db8:aa:bb:ffff::1]:1", "ytc_guess", "").StatusCode)

	// An admin who signs in successfully spends nothing.
	const admin = "192.0.2.50:1"
	for range 20 {
		require.Equal(t, http.StatusSeeOther, td.signIn(admin, td.key, "").StatusCode)
	}
	require.Equal(t, http.StatusUnauthorized, td.signIn(admin, "typo", "").StatusCode)
}

func TestSignInLimiterForgetsAddressesWhenFull(t *testing.T) {
	t.Parallel()
	l := newSignInLimiter()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	l.max = 100
	for i := range 1000 {
		ok, _ := l.take("addr-" + string(rune(i)))
		require.True(t, ok)
	}
	require.LessOrEqual(t, len(l.tat), 100, "a flood from many addresses cannot grow the table")
}

// TestFormPostsAreBounded: a form post reads at most 64 KiB.
func TestFormPostsAreBounded(t *testing.T) {
	t.Parallel()
	td := newTestDashboard(t)
	big := url.Values{"key": {td.key}, "pad": {strings.Repeat("x", 1<<20)}}
	req := httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(big.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	td.mux.ServeHTTP(rec, req)
	require.NotEqual(t, http.StatusSeeOther, rec.Code, "a 1 MiB form is not read")
}
