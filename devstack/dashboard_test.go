package devstack

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/browsertest"
)

// newUser makes a user with one key through the admin API and returns the
// key and its prefix.
func newUser(t *testing.T, admin client, name string) (key, prefix string) {
	t.Helper()
	return newUserOn(t, admin, name, "")
}

// newUserOn is newUser on a plan ("": the default plan).
func newUserOn(t *testing.T, admin client, name, plan string) (key, prefix string) {
	t.Helper()
	code, b := admin.do("POST", "/v1/admin/users", map[string]string{"name": name, "plan": plan})
	require.Equal(t, http.StatusOK, code, string(b))
	var u struct{ User struct{ ID string } }
	require.NoError(t, json.Unmarshal(b, &u))
	code, b = admin.do("POST", "/v1/admin/users/"+u.User.ID+"/keys", map[string]string{"name": "browser-test"})
	require.Equal(t, http.StatusOK, code, string(b))
	var k struct {
		Secret string
		Key    struct{ Prefix string }
	}
	require.NoError(t, json.Unmarshal(b, &k))
	return k.Secret, k.Key.Prefix
}

// TestDashboardInABrowser signs in to /admin/ in headless Chromium, watches a
// submitted job appear and finish on the jobs page and its transcript on the
// job page, revokes the user's key on the users page, and sees the edge
// refuse that key.
func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.AuthCacheTTL = 500 * time.Millisecond })
	media, refs := mediaServer(t)
	admin := client{t: t, base: s.EdgeURL, key: s.APIKey}
	bobKey, bobPrefix := newUser(t, admin, "bob")
	bob := client{t: t, base: s.EdgeURL, key: bobKey}
	dash := s.CoreURL + "/admin"

	ctx := browsertest.Start(t)
	type css = chromedp.CSS
	do := browsertest.Steps(t, ctx, 90*time.Second)
	read := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		require.NoError(t, err)
		return v
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start the browser") // outside any timeout: it lives as long as ctx
	do("a signed-out visit lands on the sign-in form", chromedp.Navigate(dash+"/jobs"), chromedp.WaitVisible(css(`#login`)))
	require.Contains(t, read(chromedp.Location()), "/admin/login?next=")
	do("a user's key is refused",
		chromedp.SendKeys(css(`#key`), bobKey), chromedp.Submit(css(`#login`)), chromedp.WaitVisible(css(`p.error`)))
	do("the admin's key signs in and goes where it was going",
		chromedp.SendKeys(css(`#key`), s.APIKey), chromedp.Submit(css(`#login`)), chromedp.WaitVisible(css(`table#jobs`)))
	loc := read(chromedp.Location())
	require.True(t, strings.HasSuffix(loc, "/admin/jobs"), loc)

	j := bob.create(media + "/" + firstClip(refs) + ".ogg")
	row := `tr[data-job="` + j.ID + `"]`
	do("the job appears on the jobs page, which refreshes itself", chromedp.WaitVisible(css(row)))
	do("and finishes there", chromedp.WaitVisible(css(row+`[data-status="succeeded"]`)))

	// The jobs page draws itself again every 2 s: its link is followed in
	// one step inside the page, not found and then clicked.
	follow := `(() => { const a = document.querySelector('` + row + ` a'); if (!a) return false; a.click(); return true; })()`
	require.Eventually(t, func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](follow))
		return err == nil && ok
	}, 30*time.Second, 200*time.Millisecond, "follow the job's link")
	do("the job page shows its transcript", chromedp.WaitVisible(css(`#segments li`)))
	require.Equal(t, "succeeded", read(chromedp.Text(css(`#status`))))

	key := `.key[data-key="` + bobPrefix + `"]`
	do("the users page revokes bob's key, once confirmed",
		chromedp.Navigate(dash+"/users"), chromedp.WaitVisible(css(key+` button`)), chromedp.Click(css(key+` button`)),
		chromedp.WaitVisible(css(`#confirm`)), chromedp.Click(css(`#confirm-yes`)),
		chromedp.WaitVisible(css(key+` .revoked`)))
	require.Eventually(t, func() bool {
		code, _ := bob.do("GET", "/v1/jobs", nil)
		return code == http.StatusUnauthorized
	}, 5*time.Second, 100*time.Millisecond, "the edge refuses the revoked key")

	do("the fleet page lists the gpu-node", chromedp.Navigate(dash+"/fleet"), chromedp.WaitVisible(css(`tr[data-node="dev-node"]`)))
	require.Contains(t, read(chromedp.Text(css(`tr[data-node="dev-node"]`))), "sphinx")

	do("the audit log shows who did it", chromedp.Navigate(dash+"/audit"), chromedp.WaitVisible(css(`#audit`)))
	audit := read(chromedp.Text(css(`#audit`)))
	require.Contains(t, audit, "revoke_key")
	require.Contains(t, audit, "admin:dev")
}

// TestDashboardRefusesFormsWithoutTheCSRFToken: a signed-in session alone
// cannot change anything; the form must carry the session's token.
func TestDashboardRefusesFormsWithoutTheCSRFToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	admin := client{t: t, base: s.EdgeURL, key: s.APIKey}
	newUser(t, admin, "carol")
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(s.CoreURL+"/admin/login", url.Values{"key": {s.APIKey}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/admin/", resp.Request.URL.Path, "signed in, on the overview")

	code, b := admin.do("GET", "/v1/admin/users", nil)
	require.Equal(t, http.StatusOK, code)
	var users struct{ Users []struct{ ID, Name string } }
	require.NoError(t, json.Unmarshal(b, &users))
	var carol string
	for _, u := range users.Users {
		if u.Name == "carol" {
			carol = u.ID
		}
	}
	code, b = admin.do("GET", "/v1/admin/users/"+carol+"/keys", nil)
	require.Equal(t, http.StatusOK, code)
	var keys struct{ Keys []struct{ ID string } }
	require.NoError(t, json.Unmarshal(b, &keys))

	for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
		resp, err = c.PostForm(s.CoreURL+"/admin/keys/"+keys.Keys[0].ID+"/revoke", form)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	}
	code, b = admin.do("GET", "/v1/admin/users/"+carol+"/keys", nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(b), `"revoked_at":"`, "nothing was revoked")
}
