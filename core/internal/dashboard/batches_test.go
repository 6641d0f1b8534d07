package dashboard

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/browsertest"
)

// hostile is a batch source and a child's URL written to break out of the
// page: shown as text, it adds no element.
const hostile = `https://evil.example/playlist?list=x"><script>document.title="pwned"</script><img src=x id=injected>`

// addBatches gives a user a playlist batch with a hostile source, still
// being listed, and a list batch of two jobs, one with a hostile URL.
func addBatches(t *testing.T, st *store.Store) (user store.User, playlist, list store.Batch) {
	t.Helper()
	ctx := context.Background()
	user, err := st.EnsureUser(ctx, "mallory", store.RoleUser)
	require.NoError(t, err)
	playlist, _, err = st.CreateBatch(ctx, store.NewBatch{UserID: user.ID, URL: hostile, CanonicalURL: hostile})
	require.NoError(t, err)
	list, _, err = st.CreateBatch(ctx, store.NewBatch{UserID: user.ID, Entries: []store.BatchEntry{
		{URL: "https://media.example/a.ogg", CanonicalURL: "https://media.example/a.ogg", SourceKind: job.SourceHTTP},
		{URL: hostile, CanonicalURL: "https://evil.example/b.ogg", SourceKind: job.SourceHTTP},
	}})
	require.NoError(t, err)
	return user, playlist, list
}

// TestBatchesInABrowser: an admin finds a user's batches on the batches
// page, the hostile source shown as text; filters them by status and
// user; follows a batch to its jobs, a job to its page and back to its
// batch; and cancels the batch with its button: its jobs are cancelled and
// the audit log names the admin.
func TestBatchesInABrowser(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	_, playlist, list := addBatches(t, site.store)

	ctx := browsertest.Start(t)
	type css = chromedp.CSS
	do := browsertest.Steps(t, ctx, 60*time.Second)
	read := func(a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		require.NoError(t, err)
		return v
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
		require.NoError(t, err)
		return n
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start the browser")
	do("sign in on the way to the batches page",
		chromedp.Navigate(site.URL+"/admin/batches"), chromedp.WaitVisible(css(`#login`)),
		chromedp.SendKeys(css(`#key`), site.key), chromedp.Submit(css(`#login`)), chromedp.WaitVisible(css(`table#batches`)))

	prow, lrow := `tr[data-batch="`+playlist.ID+`"]`, `tr[data-batch="`+list.ID+`"]`
	require.Equal(t, hostile, read(chromedp.TextContent(css(prow+` td.source`))), "the source, as text")
	require.Zero(t, count(`#injected, main script`), "nothing the source holds became an element")
	require.NotEqual(t, "pwned", read(chromedp.Title()))
	require.Equal(t, "enumerating", read(chromedp.TextContent(css(prow+` td.status`))))
	require.Equal(t, "running", read(chromedp.TextContent(css(lrow+` td.status`))))

	do("filter by status", chromedp.Navigate(site.URL+"/admin/batches?status=running"), chromedp.WaitVisible(css(lrow)))
	require.Zero(t, count(prow), "an enumerating batch is not running")
	do("filter by another user", chromedp.Navigate(site.URL+"/admin/batches?user=root"), chromedp.WaitVisible(css(`#batches td.muted`)))
	require.Zero(t, count(`#batches tr[data-batch]`), "root has no batches")

	do("open the list batch", chromedp.Navigate(site.URL+"/admin/batches"), chromedp.Click(css(lrow+` a`)),
		chromedp.WaitVisible(css(`#batch[data-batch="`+list.ID+`"]`)))
	require.Equal(t, 2, count(`#jobs tr[data-job]`))
	require.Contains(t, read(chromedp.TextContent(css(`#jobs tr[data-job]:nth-of-type(3)`))), hostile, "a child's URL, as text")
	require.Zero(t, count(`#injected, main script`))
	require.Contains(t, read(chromedp.TextContent(css(`#counts`))), "2: 2 queued")

	do("a job links back to its batch", chromedp.Click(css(`#jobs tr[data-job] a`)), chromedp.WaitVisible(css(`#batch-link`)),
		chromedp.Click(css(`#batch-link`)), chromedp.WaitVisible(css(`#batch[data-batch="`+list.ID+`"]`)))

	do("cancel the batch with its button, and confirm", chromedp.Click(css(`#cancel-batch button`)),
		chromedp.WaitVisible(css(`#confirm`)), chromedp.Click(css(`#confirm-yes`)),
		chromedp.WaitVisible(css(`#cancel-batch button[disabled]`)))
	require.Equal(t, "cancelled", read(chromedp.TextContent(css(`#status`))))
	require.Equal(t, 2, count(`#jobs tr[data-status="cancelled"]`))
	b, err := site.store.GetBatch(context.Background(), "", list.ID)
	require.NoError(t, err)
	require.Equal(t, store.BatchCancelled, b.Status)
	require.Equal(t, 2, b.Counts.Cancelled)
	entries, err := site.store.ListAudit(context.Background(), time.Time{}, 10)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	require.Equal(t, "cancel_batch", entries[0].Action)
	require.Equal(t, list.ID, entries[0].Target)
	require.Equal(t, "admin:root", entries[0].Actor)

	do("the overview counts batches", chromedp.Navigate(site.URL+"/admin/"), chromedp.WaitVisible(css(`#batches-running`)))
	require.Equal(t, "0", read(chromedp.TextContent(css(`#batches-running`))))
	require.Equal(t, "1", read(chromedp.TextContent(css(`#batches-enumerating`))))
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// TestCancelBatchNeedsTheCSRFToken: without the session's token a batch is
// not cancelled; with it, it is. The raw page carries the source escaped.
func TestCancelBatchNeedsTheCSRFToken(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	_, playlist, _ := addBatches(t, site.store)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(site.URL+"/admin/login", url.Values{"key": {site.key}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = c.Get(site.URL + "/admin/batches/" + playlist.ID)
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(page), "<script>document.title", "the source is escaped")
	require.Contains(t, string(page), "&lt;script&gt;")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	require.NotNil(t, m)

	cancel := func(csrf string) int {
		resp, err := c.PostForm(site.URL+"/admin/batches/"+playlist.ID+"/cancel", url.Values{"csrf": {csrf}, "confirm": {"yes"}})
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusForbidden, cancel("forged"))
	b, err := site.store.GetBatch(context.Background(), "", playlist.ID)
	require.NoError(t, err)
	require.Equal(t, store.BatchEnumerating, b.Status, "not cancelled without the token")
	require.Equal(t, http.StatusOK, cancel(string(m[1])), "cancelled, then the batch's page")
	b, err = site.store.GetBatch(context.Background(), "", playlist.ID)
	require.NoError(t, err)
	require.Equal(t, store.BatchCancelled, b.Status)

	resp, err = c.Get(site.URL + "/admin/batches/00000000-0000-0000-0000-000000000000")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
