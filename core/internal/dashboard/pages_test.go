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

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// seeded is what seed put in a store.
type seeded struct {
	alice                                  store.User
	queued, notMedia, flaky, done, holding job.Job
	aliceKey                               string // alice's API key
}

// seed gives the store a user, alice, with a job in each state the pages
// show differently — queued, failed for good (not_media), failed for a
// reason another attempt may not meet (download_failed), succeeded with a
// transcript, transcribing on the gpu-node "gpu-1" — a batch, a plan
// change in the audit log and the node itself.
func seed(t *testing.T, st *store.Store) seeded {
	t.Helper()
	ctx := context.Background()
	var s seeded
	var err error
	s.alice, err = st.EnsureUser(ctx, "alice", store.RoleUser)
	require.NoError(t, err)
	s.aliceKey, err = st.CreateAPIKey(ctx, s.alice.ID)
	require.NoError(t, err)
	create := func(url string) job.Job {
		t.Helper()
		j, err := st.CreateJob(ctx, store.NewJob{UserID: s.alice.ID, URL: url, CanonicalURL: url, SourceKind: job.SourceHTTP, MaxAttempts: 1})
		require.NoError(t, err)
		c, ok, err := st.ClaimQueued(ctx, "core-1", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, j.ID, c.ID)
		return c
	}
	s.notMedia = create("https://media.example/slides.pdf")
	_, err = st.Fail(ctx, s.notMedia.ID, s.notMedia.Epoch, job.Errorf(job.CodeNotMedia, "the file has no audio stream"))
	require.NoError(t, err)
	s.flaky = create("https://media.example/flaky.ogg")
	_, err = st.Fail(ctx, s.flaky.ID, s.flaky.Epoch, &job.Error{Code: job.CodeDownloadFailed, Message: "the media could not be fetched", Retryable: true})
	require.NoError(t, err)
	s.done = create("https://media.example/talk.ogg")
	require.NoError(t, st.CompleteFromCaptions(ctx, s.done.ID, s.done.Epoch, store.Media{Title: "A talk on captions", Duration: 3 * time.Second},
		"en", job.FromCaptions, []job.Segment{{Seq: 0, StartMS: 0, EndMS: 1500, Text: "Hello captions."}, {Seq: 1, StartMS: 1500, EndMS: 3000, Text: "Goodbye."}}))
	s.holding = create("https://media.example/long.ogg")
	require.NoError(t, st.MarkReady(ctx, s.holding.ID, s.holding.Epoch, store.Media{Title: "A long lecture", Duration: time.Minute, AudioKey: "audio/x.wav"}))
	caps := []engines.Caps{{Name: "sphinx", Models: []string{"en-us"}, Languages: []string{"en"}}}
	_, err = st.TouchAgent(ctx, "gpu-1", caps, "v1.2.3", store.Slots{})
	require.NoError(t, err)
	s.holding, _, err = st.ClaimReady(ctx, "gpu-1", caps, time.Minute, 0)
	require.NoError(t, err)
	s.queued, err = st.CreateJob(ctx, store.NewJob{UserID: s.alice.ID, URL: "https://media.example/next.ogg", CanonicalURL: "https://media.example/next.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	_, _, err = st.CreateBatch(ctx, store.NewBatch{UserID: s.alice.ID, Entries: []store.BatchEntry{
		{URL: "https://media.example/b.ogg", CanonicalURL: "https://media.example/b.ogg", SourceKind: job.SourceHTTP},
	}})
	require.NoError(t, err)
	require.NoError(t, st.SetPlan(ctx, store.Plan{Name: "pro", CreateRate: 5, CreateBurst: 10, ReadRate: 50, ReadBurst: 100, MonthlyMinutes: 600, MaxConcurrent: 4}))
	plan, err := st.GetPlan(ctx, "pro")
	require.NoError(t, err)
	require.NoError(t, st.Audit(ctx, "admin:root", "set_plan", "pro", map[string]any{"plan": plan}))
	return s
}

// browse is an HTTP client signed in to site's dashboard.
type browse struct {
	t    *testing.T
	c    *http.Client
	base string
}

func signIn(t *testing.T, site *cookieSite) *browse {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	b := &browse{t: t, c: &http.Client{Jar: jar}, base: site.URL}
	resp, err := b.c.PostForm(site.URL+"/admin/login", url.Values{"key": {site.key}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return b
}

// get fetches a page: its status and body.
func (b *browse) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post sends a form with the session's CSRF token (read off the overview).
func (b *browse) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	_, page := b.get("/admin/")
	m := csrfRE.FindStringSubmatch(page)
	require.NotNil(b.t, m)
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", m[1])
	resp, err := b.c.PostForm(b.base+path, form)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, string(body)
}

// TestEveryPageAnswersOnBothDrivers: each page of the dashboard renders on
// PostgreSQL and on the single box's SQLite alike, with jobs in every
// state, a gpu-node holding one of them and a batch.
func TestEveryPageAnswersOnBothDrivers(t *testing.T) {
	for _, d := range storetest.Drivers {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			site := newSite(t, d)
			s := seed(t, site.store)
			b := signIn(t, site)
			for _, path := range []string{"/admin/", "/admin/jobs", "/admin/jobs?status=failed", "/admin/jobs/" + s.done.ID,
				"/admin/jobs/" + s.notMedia.ID, "/admin/jobs/" + s.holding.ID, "/admin/batches", "/admin/fleet", "/admin/users",
				"/admin/cookies", "/admin/audit"} {
				code, body := b.get(path)
				require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
				require.NotContains(t, body, "internal error", path)
			}
			_, jobs := b.get("/admin/jobs")
			require.Contains(t, jobs, "A talk on captions", "the jobs list names each job by its title")
			_, fleet := b.get("/admin/fleet")
			require.Contains(t, fleet, "gpu-1")
			require.True(t, strings.Contains(fleet, "A long lecture"), "the fleet names the job a node holds by its title")
		})
	}
}

// TestJobPageSaysWhatTheJobIsAndOffersWhatHelps: a job is headed by its
// title; "(live)" only while it runs; Retry only where another attempt may
// end otherwise (a failed download, not a file without audio); downloads
// in every format once there is a transcript; and the time of each stage.
func TestJobPageSaysWhatTheJobIsAndOffersWhatHelps(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	s := seed(t, site.store)
	b := signIn(t, site)

	_, done := b.get("/admin/jobs/" + s.done.ID)
	require.Contains(t, done, "<h1>A talk on captions</h1>")
	require.NotContains(t, done, "(live)", "the job has ended")
	require.NotContains(t, done, `id="retry"`, "a succeeded job has nothing to retry")
	require.NotContains(t, done, `id="cancel"`)
	for _, f := range []string{"srt", "vtt", "ass", "ttml", "sbv", "txt", "json", "tsv"} {
		require.Contains(t, done, `href="/admin/jobs/`+s.done.ID+`/transcript?format=`+f+`"`)
	}
	require.Regexp(t, `data-stage="queued"`, done)
	require.Regexp(t, `data-stage="downloading"`, done)
	require.Regexp(t, `data-stage="in all"`, done)
	require.NotContains(t, done, `data-stage="transcribing"`, "captions taken from the site need no gpu-node")

	resp, err := b.c.Get(site.URL + "/admin/jobs/" + s.done.ID + "/transcript?format=srt")
	require.NoError(t, err)
	srt, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(srt), "00:00:00,000 --> 00:00:01,500\nHello captions.")
	require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	code, _ := b.get("/admin/jobs/" + s.done.ID + "/transcript?format=docx")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = b.get("/admin/jobs/" + s.queued.ID + "/transcript?format=srt")
	require.Equal(t, http.StatusConflict, code, "no transcript yet")

	_, notMedia := b.get("/admin/jobs/" + s.notMedia.ID)
	require.Contains(t, notMedia, "not_media")
	require.NotContains(t, notMedia, `id="retry"`, "a file without audio fails every attempt")
	require.NotContains(t, notMedia, `id="downloads"`)
	_, flaky := b.get("/admin/jobs/" + s.flaky.ID)
	require.Contains(t, flaky, `id="retry"`, "a failed download may go through another time")

	_, holding := b.get("/admin/jobs/" + s.holding.ID)
	require.Contains(t, holding, "<h1>A long lecture</h1>")
	require.Contains(t, holding, "(live)")
	require.Contains(t, holding, `id="cancel"`)
	require.Regexp(t, `data-stage="transcribing"><td>transcribing</td><td>[^<]+ <span class="muted">so far`, holding)
	_, queued := b.get("/admin/jobs/" + s.queued.ID)
	require.Contains(t, queued, "<h1>https://media.example/next.ogg</h1>", "no title yet: the source")
	require.Contains(t, queued, "alice", "the user by name")
}

func TestStagesAndDurations(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850 ms", 12340 * time.Millisecond: "12.3 s", 245 * time.Second: "4 min 05 s",
		2*time.Hour + 3*time.Minute: "2 h 03 min", -time.Second: "0 ms",
	} {
		require.Equal(t, want, took(d))
	}
}

// TestDestructiveActionsAskFirst: a destructive form's first post only
// asks — a page whose form posts again with confirm=yes — and changes
// nothing; the confirmed post does it.
func TestDestructiveActionsAskFirst(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	s := seed(t, site.store)
	b := signIn(t, site)
	code, page := b.post("/admin/jobs/"+s.queued.ID+"/cancel", url.Values{"label": {"next.ogg"}})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, `id="confirm"`)
	require.Contains(t, page, `<strong id="confirm-label">next.ogg</strong>`)
	require.Contains(t, page, `action="/admin/jobs/`+s.queued.ID+`/cancel"`)
	require.Contains(t, page, `name="confirm" value="yes"`)
	j, err := site.store.GetJob(context.Background(), "", s.queued.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusQueued, j.Status, "asking cancels nothing")

	code, _ = b.post("/admin/jobs/"+s.queued.ID+"/cancel", url.Values{"confirm": {"yes"}})
	require.Equal(t, http.StatusOK, code)
	j, err = site.store.GetJob(context.Background(), "", s.queued.ID)
	require.NoError(t, err)
	require.Equal(t, job.StatusCancelled, j.Status)

	for _, path := range []string{"/admin/fleet/gpu-1/drain", "/admin/keys/00000000-0000-0000-0000-000000000000/revoke"} {
		_, page := b.post(path, nil)
		require.Contains(t, page, `id="confirm"`, path)
	}
	agents, err := site.store.ListAgents(context.Background())
	require.NoError(t, err)
	require.False(t, agents[0].Draining, "asking drains nothing")
}

// TestAnAdminsLastKeyIsNotRevoked: the dashboard cannot lock the last admin
// out — the server refuses, with a reason — but a second key may go.
func TestAnAdminsLastKeyIsNotRevoked(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	b := signIn(t, site)
	ctx := context.Background()
	root, err := site.store.UserID(ctx, "root")
	require.NoError(t, err)
	keys, err := site.store.ListKeys(ctx, root)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	code, page := b.post("/admin/keys/"+keys[0].ID+"/revoke", url.Values{"confirm": {"yes"}})
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, page, "last live API key of the admin root")
	_, err = site.store.Authenticate(ctx, site.key)
	require.NoError(t, err, "the key still works")

	code, page = b.post("/admin/users/"+root+"/keys", url.Values{"name": {"spare"}})
	require.Equal(t, http.StatusOK, code, page)
	code, _ = b.post("/admin/keys/"+keys[0].ID+"/revoke", url.Values{"confirm": {"yes"}})
	require.NotEqual(t, http.StatusConflict, code, "with a spare, the first may go")
	after, err := site.store.ListKeys(ctx, root)
	require.NoError(t, err)
	for _, k := range after {
		require.Equal(t, k.ID == keys[0].ID, k.RevokedAt != nil, "only the first is revoked")
	}
}

// TestUsersKeysAndPlansAreMadeFromTheDashboard: a plan, a user on it, a key
// for them shown once (it works at once, and no page shows it again), a
// change of plan and role; bad numbers are refused with a reason.
func TestUsersKeysAndPlansAreMadeFromTheDashboard(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	b := signIn(t, site)
	ctx := context.Background()

	code, page := b.post("/admin/plans", url.Values{"name": {"gold"}, "monthly_minutes": {"900"}, "max_concurrent": {"5"}})
	require.Equal(t, http.StatusOK, code, page)
	require.Contains(t, page, `data-plan="gold"`)
	p, err := site.store.GetPlan(ctx, "gold")
	require.NoError(t, err)
	require.Equal(t, 900, p.MonthlyMinutes)
	require.Equal(t, 5, p.MaxConcurrent)
	code, page = b.post("/admin/plans", url.Values{"name": {"gold"}, "monthly_minutes": {"-1"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, page, "monthly_minutes must be a whole number")
	code, _ = b.post("/admin/plans", url.Values{"name": {"Not A Name!"}})
	require.Equal(t, http.StatusBadRequest, code)

	code, page = b.post("/admin/users", url.Values{"name": {"carol"}, "role": {"user"}, "plan": {"gold"}})
	require.Equal(t, http.StatusOK, code, page)
	require.Contains(t, page, `data-user="carol"`)
	carol, err := site.store.UserID(ctx, "carol")
	require.NoError(t, err)
	code, _ = b.post("/admin/users", url.Values{"name": {"carol"}})
	require.Equal(t, http.StatusConflict, code, "a taken name")

	code, page = b.post("/admin/users/"+carol+"/keys", url.Values{"name": {"laptop"}})
	require.Equal(t, http.StatusOK, code)
	m := regexp.MustCompile(`id="secret" readonly value="(ytc_[^"]+)"`).FindStringSubmatch(page)
	require.NotNil(t, m, page)
	u, err := site.store.Authenticate(ctx, m[1])
	require.NoError(t, err)
	require.Equal(t, carol, u.ID)
	_, users := b.get("/admin/users")
	require.NotContains(t, users, m[1], "shown once")
	require.Contains(t, users, m[1][:8]+"…", "then by its prefix")

	code, _ = b.post("/admin/users/"+carol, url.Values{"plan": {"default"}, "role": {"admin"}})
	require.Equal(t, http.StatusOK, code)
	a, err := site.store.GetAccount(ctx, carol)
	require.NoError(t, err)
	require.Equal(t, "default", a.Plan.Name)
	require.Equal(t, store.RoleAdmin, a.Role)
	code, _ = b.post("/admin/users/"+carol, url.Values{"plan": {"platinum"}})
	require.Equal(t, http.StatusNotFound, code, "no such plan")
}

// TestAuditDetailIsReadable: an entry's detail is key/value lines with the
// API's snake_case names — also for an entry written with Go's — nested
// objects flattened, and a user id shown as the user's name.
func TestAuditDetailIsReadable(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	s := seed(t, site.store)
	require.NoError(t, site.store.Audit(context.Background(), "admin:old", "set_plan", "legacy", map[string]any{
		"plan": map[string]any{"Name": "legacy", "MonthlyMinutes": 60, "WebhookURL": "x"}, "user_id": s.alice.ID}))
	b := signIn(t, site)
	_, page := b.get("/admin/audit")
	require.NotContains(t, page, "MonthlyMinutes")
	require.NotContains(t, page, "CreateRate")
	require.NotContains(t, page, "{&#34;", "no raw JSON")
	require.Contains(t, page, "<dt>plan.monthly_minutes</dt><dd>60</dd>")
	require.Contains(t, page, "<dt>plan.webhook_url</dt><dd>x</dd>")
	require.Contains(t, page, "<dt>plan.create_rate</dt><dd>5</dd>", "the seeded plan, as the store writes it now")
	require.Contains(t, page, "<dt>user</dt><dd>alice</dd>")
	require.NotContains(t, page, s.alice.ID)
}

// TestOverviewCountsLinkToTheirJobs: each state's count links to the jobs
// list filtered by that state.
func TestOverviewCountsLinkToTheirJobs(t *testing.T) {
	t.Parallel()
	site := newCookieSite(t)
	seed(t, site.store)
	b := signIn(t, site)
	_, page := b.get("/admin/")
	require.Regexp(t, `href="/admin/jobs\?status=failed"><span class="muted">failed</span><b id="count-failed">2</b>`, page)
	_, failed := b.get("/admin/jobs?status=failed")
	require.Equal(t, 2, strings.Count(failed, `data-status="failed"`))
}
