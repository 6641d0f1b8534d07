package dashboard

import (
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/api"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/settings"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/internal/browsertest"
)

const sessionCookies = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tthe-secret-session\n"

// cookieSite is the dashboard with the real admin service and a download
// pool behind it (one proxy with credentials), served over loopback HTTP.
type cookieSite struct {
	URL   string
	store *store.Store
	key   string
	pool  *outbound.Pool
	dash  *Dashboard
}

func newCookieSite(t *testing.T) *cookieSite {
	t.Helper()
	return newSite(t, storetest.Drivers[1])
}

// newSite is the dashboard and the admin service on a fresh database of
// driver d's, with one admin, "root".
func newSite(t *testing.T, d storetest.Driver) *cookieSite {
	t.Helper()
	ctx := context.Background()
	db := d.Open(t)
	_, err := migrations.Migrate(ctx, db)
	require.NoError(t, err)
	st := store.New(db)
	u, err := st.EnsureUser(ctx, "root", store.RoleAdmin)
	require.NoError(t, err)
	key, err := st.CreateAPIKey(ctx, u.ID)
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	pool, err := outbound.New(ctx, log, outbound.Config{Proxies: []string{"http://user:hunter2@proxy.test:3128"}}, st, nil)
	require.NoError(t, err)
	mux := http.NewServeMux()
	admin := api.Register(mux, api.Config{ServiceToken: "test-token"}, api.Deps{Log: log, Store: st, Metrics: prometheus.NewRegistry(),
		Settings: settings.Static(settings.Settings{MaxAttempts: 3}), Outbound: pool})
	dash := New(log, st, admin)
	dash.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &cookieSite{URL: srv.URL, store: st, key: key, pool: pool, dash: dash}
}

// TestCookieFilesInABrowser: an admin adds a cookie file by upload, sees it
// listed but never its content, is told why a pasted junk file is refused,
// disables the file with its button (the pool stops handing it out) and
// sees the pool's proxy, without its password, on the fleet page.
func TestCookieFilesInABrowser(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	file := filepath.Join(t.TempDir(), "cookies.txt")
	require.NoError(t, os.WriteFile(file, []byte(sessionCookies), 0o600))

	ctx := browsertest.Start(t)
	type css = chromedp.CSS
	do := browsertest.Steps(t, ctx, 60*time.Second)
	read := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		require.NoError(t, err)
		return v
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start the browser") // outside any timeout: it lives as long as ctx
	do("sign in on the way to the cookies page",
		chromedp.Navigate(site.URL+"/admin/cookies"), chromedp.WaitVisible(css(`#login`)),
		chromedp.SendKeys(css(`#key`), site.key), chromedp.Submit(css(`#login`)), chromedp.WaitVisible(css(`table#cookies`)))

	row := `tr[data-cookies="account-1"]`
	do("upload a cookies.txt",
		chromedp.SendKeys(css(`#cookies-name`), "account-1"), chromedp.SetUploadFiles(css(`#cookies-file`), []string{file}),
		chromedp.Submit(css(`#add-cookies`)), chromedp.WaitVisible(css(row)))
	require.Contains(t, read(chromedp.Text(css(row+` .state`))), "in turn")
	require.NotContains(t, read(chromedp.OuterHTML(css(`html`))), "the-secret-session", "the page never shows the content")
	l, err := site.pool.Pick(context.Background())
	require.NoError(t, err)
	require.Equal(t, "account-1", l.CookiesName, "the pool hands the new file out at once")

	do("paste junk",
		chromedp.SendKeys(css(`#cookies-name`), "junk"), chromedp.SetValue(css(`#cookies-text`), `[{"name":"SID"}]`),
		chromedp.Submit(css(`#add-cookies`)), chromedp.WaitVisible(css(`p.error`)))
	require.Contains(t, read(chromedp.Text(css(`p.error`))), "JSON")

	do("disable it with its button",
		chromedp.Click(css(row+` button.toggle`)), chromedp.WaitVisible(css(row+`[data-enabled="false"]`)))
	require.Contains(t, read(chromedp.Text(css(row+` .state`))), "disabled")
	files, err := site.store.ListCookieFiles(context.Background())
	require.NoError(t, err)
	require.Len(t, files, 1)
	require.False(t, files[0].Enabled)
	l, err = site.pool.Pick(context.Background())
	require.NoError(t, err)
	require.False(t, l.HasCookies(), "a disabled file is not handed out")

	do("the fleet page shows the pool", chromedp.Navigate(site.URL+"/admin/fleet"), chromedp.WaitVisible(css(`tr[data-name="proxy.test:3128"]`)))
	require.NotContains(t, read(chromedp.OuterHTML(css(`html`))), "hunter2", "a proxy's password stays off the page")

	// Each click here submits a form: load waits for the page it loads.
	load := browsertest.Loads(t, ctx, 60*time.Second)
	do("open the cookies page", chromedp.Navigate(site.URL+"/admin/cookies"), chromedp.WaitVisible(css(row)))
	load("ask to delete it", chromedp.Click(css(row+` button.delete`)))
	do("the confirmation", chromedp.WaitVisible(css(`#confirm`)))
	load("confirm", chromedp.Click(css(`#confirm-yes`)))
	do("the list is empty", chromedp.WaitVisible(css(`table#cookies td.muted`)))
	files, err = site.store.ListCookieFiles(context.Background())
	require.NoError(t, err)
	require.Empty(t, files)
}

// TestCookieFormsNeedTheCSRFTokenAndStayBounded: without the session's
// token nothing is added or disabled, and a body past the cookie form's cap
// is not read.
func TestCookieFormsNeedTheCSRFTokenAndStayBounded(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(site.URL+"/admin/login", url.Values{"key": {site.key}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = c.Get(site.URL + "/admin/cookies")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	require.NotNil(t, m)
	csrf := string(m[1])

	upload := func(csrf, content string) int {
		var body strings.Builder
		w := multipart.NewWriter(&body)
		require.NoError(t, w.WriteField("csrf", csrf))
		require.NoError(t, w.WriteField("name", "account"))
		fw, err := w.CreateFormFile("file", "cookies.txt")
		require.NoError(t, err)
		_, err = io.WriteString(fw, content)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		resp, err := c.Post(site.URL+"/admin/cookies", w.FormDataContentType(), strings.NewReader(body.String()))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, upload("forged", sessionCookies))
	require.Equal(t, http.StatusForbidden, upload("", sessionCookies))
	files, err := site.store.ListCookieFiles(context.Background())
	require.NoError(t, err)
	require.Empty(t, files, "nothing added without the token")

	require.NotEqual(t, http.StatusOK, upload(csrf, sessionCookies+strings.Repeat("#", maxCookieFormBytes)), "a body past the cap is not read")
	require.Equal(t, http.StatusBadRequest, upload(csrf, "junk"))
	require.Equal(t, http.StatusOK, upload(csrf, sessionCookies), "added, then the page again")
	files, err = site.store.ListCookieFiles(context.Background())
	require.NoError(t, err)
	require.Len(t, files, 1)

	resp, err = c.PostForm(site.URL+"/admin/cookies/"+files[0].ID+"/enabled", url.Values{"enabled": {"false"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	files, err = site.store.ListCookieFiles(context.Background())
	require.NoError(t, err)
	require.True(t, files[0].Enabled, "not disabled without the token")
}
