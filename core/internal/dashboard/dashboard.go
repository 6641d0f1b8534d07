// Package dashboard is core's admin web UI at /admin/: server-rendered HTML
// with its templates and small scripts embedded in the binary (nothing to
// build, no Node), in the look it shares with the user app (internal/webui,
// served at /admin/ui/). Admins sign in with their API key; the session
// lives in Postgres behind an HttpOnly, SameSite=Strict cookie, and every
// form carries the session's CSRF token. Changes go through the admin API's
// service, so the dashboard and the API make the same audited changes.
package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/api"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/render"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/jobjson"
	"github.com/ytcaption/ytcaption/internal/webui"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

//go:embed templates/*.html static/*
var assets embed.FS

const (
	cookieName = "ytcaption_admin"
	sessionTTL = 12 * time.Hour
)

// Dashboard serves /admin/.
type Dashboard struct {
	log     *slog.Logger
	store   *store.Store
	admin   *api.AdminService
	pages   map[string]*template.Template
	signIns *signInLimiter
	// stayStill turns the pages' self-refresh off, for tests that walk a
	// page's controls for longer than its refresh interval.
	stayStill bool
}

// New returns the dashboard; Register mounts it.
func New(log *slog.Logger, st *store.Store, admin *api.AdminService) *Dashboard {
	funcs := template.FuncMap{
		"job": func(j *ytcaptionv1.Job) jobjson.Job { return jobjson.From(j) },
		"time": func(v any) string {
			switch t := v.(type) {
			case time.Time:
				return t.UTC().Format("2006-01-02 15:04:05")
			case interface{ AsTime() time.Time }:
				if t == nil {
					return ""
				}
				return t.AsTime().UTC().Format("2006-01-02 15:04:05")
			case string:
				if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
					return p.UTC().Format("2006-01-02 15:04:05")
				}
				return t
			}
			return ""
		},
		"mul100":  func(v float64) float64 { return 100 * v },
		"minutes": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
		"limit": func(n int32) string {
			if n == 0 {
				return "unlimited"
			}
			return strconv.Itoa(int(n))
		},
		"batchStatus": batchStatus,
		"retryHelps":  errcode.RetryHelps,
		"terminal":    func(s string) bool { return job.Status(s).Terminal() },
		"detail":      auditDetail,
		"inc":         func(i int) int { return i + 1 },
		"pct": func(a, b int) string {
			if b == 0 {
				return "–"
			}
			return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 1, 64) + " %"
		},
	}
	d := &Dashboard{log: log, store: st, admin: admin, pages: map[string]*template.Template{}, signIns: newSignInLimiter()}
	for _, p := range []string{"login", "overview", "jobs", "job", "batches", "batch", "users", "key", "plans", "fleet", "cookies", "audit",
		"confirm", "error"} {
		d.pages[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html"))
	}
	return d
}

// Register mounts the dashboard under /admin/ on mux.
func (d *Dashboard) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	// The look the dashboard shares with the user app.
	mux.Handle("GET /admin/ui/", http.StripPrefix("/admin/ui/", webui.Handler()))
	// Every form post reads at most maxFormBytes.
	post := func(pattern string, h http.HandlerFunc) { mux.HandleFunc("POST "+pattern, limitForm(h)) }
	mux.HandleFunc("GET /admin/login", d.loginPage)
	post("/admin/login", d.login)
	post("/admin/logout", d.signedIn(d.logout))
	mux.HandleFunc("GET /admin/{$}", d.signedIn(d.overview))
	mux.HandleFunc("GET /admin/jobs", d.signedIn(d.jobs))
	mux.HandleFunc("GET /admin/jobs/{id}", d.signedIn(d.job))
	mux.HandleFunc("GET /admin/jobs/{id}/segments", d.signedIn(d.segments))
	mux.HandleFunc("GET /admin/jobs/{id}/transcript", d.signedIn(d.transcript))
	post("/admin/jobs/{id}/retry", d.signedIn(d.retry))
	post("/admin/jobs/{id}/cancel", d.signedIn(d.cancel))
	mux.HandleFunc("GET /admin/batches", d.signedIn(d.batches))
	mux.HandleFunc("GET /admin/batches/{id}", d.signedIn(d.batch))
	post("/admin/batches/{id}/cancel", d.signedIn(d.cancelBatch))
	mux.HandleFunc("GET /admin/users", d.signedIn(d.users))
	post("/admin/users", d.signedIn(d.createUser))
	post("/admin/users/{id}", d.signedIn(d.updateUser))
	post("/admin/users/{id}/keys", d.signedIn(d.createKey))
	post("/admin/keys/{id}/revoke", d.signedIn(d.revoke))
	mux.HandleFunc("GET /admin/plans", d.signedIn(d.plans))
	post("/admin/plans", d.signedIn(d.setPlan))
	post("/admin/breakers/{name}/reset", d.signedIn(d.resetBreaker))
	mux.HandleFunc("GET /admin/fleet", d.signedIn(d.fleet))
	post("/admin/fleet/{node}/drain", d.signedIn(d.drain))
	mux.HandleFunc("GET /admin/cookies", d.signedIn(d.cookies))
	// A cookie file is larger than any other form: it has a limit of its own.
	mux.HandleFunc("POST /admin/cookies", limitBody(maxCookieFormBytes, d.signedIn(d.addCookies)))
	post("/admin/cookies/{id}/enabled", d.signedIn(d.enableCookies))
	post("/admin/cookies/{id}/delete", d.signedIn(d.deleteCookies))
	mux.HandleFunc("GET /admin/audit", d.signedIn(d.audit))
}

type sessionKey struct{}

func session(ctx context.Context) store.AdminSession {
	s, _ := ctx.Value(sessionKey{}).(store.AdminSession)
	return s
}

// signedIn admits a live session, checks the CSRF token of every POST, and
// runs h as the signed-in admin.
func (d *Dashboard) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s store.AdminSession
		var err error = job.Errorf(job.CodeUnauthorized, "no session cookie")
		if c, cerr := r.Cookie(cookieName); cerr == nil {
			s, err = d.store.Session(r.Context(), c.Value)
		}
		if err != nil {
			if job.CodeOf(err) != job.CodeUnauthorized {
				d.fail(w, r, err)
				return
			}
			http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
			http.Error(w, "the form's CSRF token is missing or stale: reload the page", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		ctx := api.WithActor(context.WithValue(r.Context(), sessionKey{}, s), "admin:"+s.Name)
		h(w, r.WithContext(ctx))
	}
}

// page is what every template gets.
type page struct {
	Title   string
	Session store.AdminSession
	Nav     string
	Error   string
	Data    any
	Refresh int // seconds; 0: no refresh
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	d.renderStatus(w, r, http.StatusOK, name, p)
}

// renderStatus renders a page with an HTTP status: the headers go first.
func (d *Dashboard) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Session = session(r.Context())
	if d.stayStill {
		p.Refresh = 0
	}
	p.Nav = name
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	webui.SetPageHeaders(w.Header())
	w.WriteHeader(status)
	if err := d.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		d.log.ErrorContext(r.Context(), "render dashboard", "page", name, "err", err)
	}
}

func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *connect.Error
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &ce) && ce.Code() == connect.CodeNotFound, job.CodeOf(err) == job.CodeNotFound:
		code = http.StatusNotFound
	case errors.As(err, &ce) && ce.Code() == connect.CodeInvalidArgument, job.CodeOf(err) == job.CodeInvalidArgument:
		code = http.StatusBadRequest
	// Core's conflicts (a taken name, a job in the wrong state, an admin's
	// last key) are Connect's FailedPrecondition.
	case errors.As(err, &ce) && (ce.Code() == connect.CodeFailedPrecondition || ce.Code() == connect.CodeAlreadyExists),
		job.CodeOf(err) == job.CodeConflict, job.CodeOf(err) == job.CodeNotReady:
		code = http.StatusConflict
	default:
		d.log.ErrorContext(r.Context(), "dashboard", "path", r.URL.Path, "err", err)
	}
	msg := "internal error: the cause is in core's log"
	switch {
	case code != http.StatusInternalServerError && ce != nil:
		msg = ce.Message()
	case code != http.StatusInternalServerError:
		var je *job.Error
		if errors.As(err, &je) {
			msg = je.Message
		}
	}
	d.renderStatus(w, r, code, "error", page{Title: "That did not work", Error: msg})
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, "login", page{Title: "Sign in", Data: safeNext(r.URL.Query().Get("next"))})
}

// login signs an admin in and sends them on to next — only ever a page of
// the dashboard's (safeNext). Attempts are limited per client address
// before the key is looked up; failures count, successes do not.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	client := clientaddr.Bucket(clientaddr.Peer(r.RemoteAddr)) // core trusts no forwarding header
	if ok, wait := d.signIns.take(client); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		d.renderStatus(w, r, http.StatusTooManyRequests, "login", page{Title: "Sign in", Data: next,
			Error: fmt.Sprintf("Too many failed sign-ins from your address: try again in %d s.", secs)})
		return
	}
	id, _, err := d.store.SignIn(r.Context(), strings.TrimSpace(r.PostFormValue("key")), sessionTTL)
	if err != nil {
		if job.CodeOf(err) != job.CodeUnauthorized {
			d.fail(w, r, err)
			return
		}
		d.renderStatus(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "That is not an admin's API key.", Data: next})
		return
	}
	d.signIns.refund(client)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/admin/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: int(sessionTTL.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if err := d.store.SignOut(r.Context(), c.Value); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/admin/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	o, err := d.store.GetOverview(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	enumerating, running, err := d.store.UnfinishedBatches(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	br, err := d.admin.ListBreakers(r.Context(), connect.NewRequest(&ytcaptionv1.ListBreakersRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "overview", page{Title: "Overview", Refresh: 5, Data: map[string]any{
		"Statuses": job.Statuses, "Overview": o, "Breakers": br.Msg.GetBreakers(),
		"EnumeratingBatches": enumerating, "RunningBatches": running,
	}})
}

// userFilter is the id of the user a list is filtered by (?user=NAME),
// "" for everyone's.
func (d *Dashboard) userFilter(r *http.Request) (string, error) {
	name := r.URL.Query().Get("user")
	if name == "" {
		return "", nil
	}
	return d.store.UserID(r.Context(), name)
}

func (d *Dashboard) jobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, err := d.userFilter(r)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	req := &ytcaptionv1.SearchJobsRequest{Status: q.Get("status"), UrlContains: q.Get("q"), ErrorCode: q.Get("error_code"), Limit: 100, UserId: user}
	resp, err := d.admin.SearchJobs(r.Context(), connect.NewRequest(req))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names, err := d.userNames(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "jobs", page{Title: "Jobs", Refresh: 2, Data: map[string]any{
		"Jobs": resp.Msg.GetJobs(), "Users": names, "Statuses": job.Statuses, "Query": q,
	}})
}

func (d *Dashboard) userNames(ctx context.Context) (map[string]string, error) {
	us, err := d.store.ListUsers(ctx)
	names := map[string]string{}
	for _, u := range us {
		names[u.ID] = u.Name
	}
	return names, err
}

// jobView is a job's page: the job headed by what it transcribes, what an
// admin may do with it, its downloads and how long each stage took.
type jobView struct {
	*ytcaptionv1.GetJobDetailResponse
	UserName string
	// Live: the job still runs, so its transcript may grow.
	Live, CanRetry, CanCancel bool
	Formats                   []render.Format // none until there is a transcript
	Stages                    []stage
}

func (d *Dashboard) job(w http.ResponseWriter, r *http.Request) {
	resp, err := d.admin.GetJobDetail(r.Context(), connect.NewRequest(&ytcaptionv1.GetJobDetailRequest{Id: r.PathValue("id")}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names, err := d.userNames(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	pj := resp.Msg.GetJob().GetJob()
	status := job.Status(jobjson.From(pj).Status)
	v := jobView{GetJobDetailResponse: resp.Msg, UserName: names[resp.Msg.GetJob().GetUserId()], Live: !status.Terminal(),
		CanRetry:  status == job.StatusFailed && errcode.RetryHelps(pj.GetError().GetCode()),
		CanCancel: !status.Terminal(), Stages: stages(pj, time.Now())}
	if status == job.StatusSucceeded || status == job.StatusCancelled {
		v.Formats = render.Formats
	}
	p := page{Title: jobTitle(pj), Data: v}
	d.render(w, r, "job", p)
}

// jobTitle is what a job transcribes: its media's title, else its URL.
func jobTitle(j *ytcaptionv1.Job) string {
	if t := j.GetMedia().GetTitle(); t != "" {
		return t
	}
	return j.GetUrl()
}

// stage is how long a job spent in one stage; Running marks the one it is
// in, counted up to now.
type stage struct {
	Name    string
	Took    string
	Running bool
}

// stages are a job's times in each stage so far, from the times core
// records as it enters each: queued, downloading, waiting for a gpu-node,
// transcribing; a stage the job skipped (captions taken from the site need
// no gpu-node) is left out. A retried job shows its last attempt's.
func stages(j *ytcaptionv1.Job, now time.Time) []stage {
	type mark struct {
		name string
		at   interface{ AsTime() time.Time }
		set  bool
	}
	marks := []mark{
		{"queued", j.GetCreatedAt(), j.GetCreatedAt() != nil},
		{"downloading", j.GetDownloadingAt(), j.GetDownloadingAt() != nil},
		{"waiting for a gpu-node", j.GetReadyAt(), j.GetReadyAt() != nil},
		{"transcribing", j.GetTranscribingAt(), j.GetTranscribingAt() != nil},
	}
	end, done := now, j.GetFinishedAt() != nil
	if done {
		end = j.GetFinishedAt().AsTime()
	}
	var out []stage
	for i, m := range marks {
		if !m.set {
			continue
		}
		next, running := end, !done
		for _, n := range marks[i+1:] {
			if n.set && !n.at.AsTime().Before(m.at.AsTime()) {
				next, running = n.at.AsTime(), false
				break
			}
		}
		out = append(out, stage{Name: m.name, Took: took(next.Sub(m.at.AsTime())), Running: running})
	}
	if done && j.GetCreatedAt() != nil {
		out = append(out, stage{Name: "in all", Took: took(end.Sub(j.GetCreatedAt().AsTime()))})
	}
	return out
}

// took writes a duration for people: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min.
func took(d time.Duration) string {
	switch d = max(d, 0); {
	case d < time.Second:
		return strconv.Itoa(int(d.Milliseconds())) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}

// transcript downloads a finished job's transcript (?format=, SRT by
// default) as a file named after the job.
func (d *Dashboard) transcript(w http.ResponseWriter, r *http.Request) {
	f, err := render.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	body, err := d.admin.Transcript(r.Context(), r.PathValue("id"), f)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", f.ContentType())
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": r.PathValue("id") + "." + string(f)}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

// segments is the job's transcript so far, for the job page's script.
func (d *Dashboard) segments(w http.ResponseWriter, r *http.Request) {
	j, err := d.store.GetJob(r.Context(), "", r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	segs, err := d.store.Segments(r.Context(), j.ID, j.Epoch, after)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	type seg struct {
		Seq   int    `json:"seq"`
		Start int64  `json:"start_ms"`
		End   int64  `json:"end_ms"`
		Text  string `json:"text"`
	}
	out := struct {
		Status   string  `json:"status"`
		Progress float64 `json:"progress"`
		Segments []seg   `json:"segments"`
	}{Status: string(j.Status), Progress: j.Progress, Segments: []seg{}}
	for _, s := range segs {
		out.Segments = append(out.Segments, seg{Seq: s.Seq, Start: s.StartMS, End: s.EndMS, Text: s.Text})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// confirmed reports whether a destructive form's post is confirmed. When it
// is not, it answers with a page asking, whose form posts the same fields
// again with confirm=yes — a step that needs no script. The question names
// the thing by the form's label field, which is shown as text only.
func (d *Dashboard) confirmed(w http.ResponseWriter, r *http.Request, verb, back string) bool {
	if r.PostFormValue("confirm") == "yes" {
		return true
	}
	fields := url.Values{}
	for k, v := range r.PostForm {
		if k != "csrf" && k != "confirm" {
			fields[k] = v
		}
	}
	d.render(w, r, "confirm", page{Title: verb + "?", Data: map[string]any{
		"Verb": verb, "Label": r.PostFormValue("label"), "Action": r.URL.Path, "Fields": fields, "Back": back,
	}})
	return false
}

// then ends an action: the error's page when it failed, else a redirect
// (303) back to where it was taken, so that reloading that page does not
// post the action again.
func (d *Dashboard) then(w http.ResponseWriter, r *http.Request, err error, back string) {
	if err != nil {
		d.fail(w, r, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (d *Dashboard) retry(w http.ResponseWriter, r *http.Request) {
	_, err := d.admin.RetryJob(r.Context(), connect.NewRequest(&ytcaptionv1.RetryJobRequest{Id: r.PathValue("id")}))
	d.then(w, r, err, "/admin/jobs/"+url.PathEscape(r.PathValue("id")))
}

func (d *Dashboard) cancel(w http.ResponseWriter, r *http.Request) {
	back := "/admin/jobs/" + url.PathEscape(r.PathValue("id"))
	if !d.confirmed(w, r, "Cancel the job", back) {
		return
	}
	_, err := d.admin.AdminCancelJob(r.Context(), connect.NewRequest(&ytcaptionv1.AdminCancelJobRequest{Id: r.PathValue("id")}))
	d.then(w, r, err, back)
}

// batchStatuses are the states a batch is filtered by, in their order.
var batchStatuses = []string{store.BatchEnumerating, store.BatchRunning, store.BatchDone, store.BatchFailed, store.BatchCancelled}

// batchStatus is a batch's status as the REST API and the store write it.
func batchStatus(s ytcaptionv1.BatchStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BATCH_STATUS_"))
}

// batches lists every user's batches, newest first, a page at a time: the
// page token is the last batch shown.
func (d *Dashboard) batches(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, err := d.userFilter(r)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	req := &ytcaptionv1.SearchBatchesRequest{Status: q.Get("status"), PageToken: q.Get("before"), Limit: 50, UserId: user}
	resp, err := d.admin.SearchBatches(r.Context(), connect.NewRequest(req))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names, err := d.userNames(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	var older string
	if next := resp.Msg.GetNextPageToken(); next != "" {
		nq := url.Values{"before": {next}}
		for _, k := range []string{"status", "user"} {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		older = "/admin/batches?" + nq.Encode()
	}
	d.render(w, r, "batches", page{Title: "Batches", Refresh: 5, Data: map[string]any{
		"Batches": resp.Msg.GetBatches(), "Users": names, "Statuses": batchStatuses, "Query": q, "Older": older,
	}})
}

func (d *Dashboard) batch(w http.ResponseWriter, r *http.Request) {
	resp, err := d.admin.GetBatchDetail(r.Context(), connect.NewRequest(&ytcaptionv1.GetBatchDetailRequest{Id: r.PathValue("id")}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names, err := d.userNames(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	b := resp.Msg.GetBatch().GetBatch()
	title := "Batch of " + b.GetUrl()
	if b.GetUrl() == "list" {
		title = "A list of " + strconv.Itoa(int(b.GetCounts().GetTotal())) + " URLs"
	}
	p := page{Title: title + " · " + names[resp.Msg.GetBatch().GetUserId()], Data: map[string]any{"Batch": b, "UserName": names[resp.Msg.GetBatch().GetUserId()],
		"Jobs": resp.Msg.GetJobs(), "Finished": batchFinished(b.GetStatus())}}
	if !batchFinished(b.GetStatus()) {
		p.Refresh = 5
	}
	d.render(w, r, "batch", p)
}

func batchFinished(s ytcaptionv1.BatchStatus) bool {
	return s == ytcaptionv1.BatchStatus_BATCH_STATUS_DONE || s == ytcaptionv1.BatchStatus_BATCH_STATUS_FAILED ||
		s == ytcaptionv1.BatchStatus_BATCH_STATUS_CANCELLED
}

func (d *Dashboard) cancelBatch(w http.ResponseWriter, r *http.Request) {
	back := "/admin/batches/" + url.PathEscape(r.PathValue("id"))
	if !d.confirmed(w, r, "Cancel the batch and its unfinished jobs", back) {
		return
	}
	_, err := d.admin.AdminCancelBatch(r.Context(), connect.NewRequest(&ytcaptionv1.AdminCancelBatchRequest{Id: r.PathValue("id")}))
	d.then(w, r, err, back)
}

func (d *Dashboard) revoke(w http.ResponseWriter, r *http.Request) {
	if !d.confirmed(w, r, "Revoke the API key", "/admin/users") {
		return
	}
	_, err := d.admin.RevokeKey(r.Context(), connect.NewRequest(&ytcaptionv1.RevokeKeyRequest{KeyId: r.PathValue("id")}))
	d.then(w, r, err, "/admin/users")
}

func (d *Dashboard) resetBreaker(w http.ResponseWriter, r *http.Request) {
	if !d.confirmed(w, r, "Reset the circuit breaker", "/admin/") {
		return
	}
	_, err := d.admin.ResetBreaker(r.Context(), connect.NewRequest(&ytcaptionv1.ResetBreakerRequest{Name: r.PathValue("name")}))
	d.then(w, r, err, "/admin/")
}

func (d *Dashboard) fleet(w http.ResponseWriter, r *http.Request) {
	resp, err := d.admin.ListAgents(r.Context(), connect.NewRequest(&ytcaptionv1.ListAgentsRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	ob, err := d.admin.ListOutbound(r.Context(), connect.NewRequest(&ytcaptionv1.ListOutboundRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	// A node holds a few jobs at most: each is named by what it transcribes.
	titles := map[string]string{}
	for _, a := range resp.Msg.GetAgents() {
		for _, id := range a.GetCurrentJobs() {
			j, err := d.store.GetJob(r.Context(), "", id)
			switch {
			case err == nil:
				titles[id] = j.URL
				if j.MediaTitle != "" {
					titles[id] = j.MediaTitle
				}
			case job.CodeOf(err) != job.CodeNotFound:
				d.fail(w, r, err)
				return
			}
		}
	}
	d.render(w, r, "fleet", page{Title: "GPU fleet", Refresh: 5, Error: resp.Msg.GetNomadError(), Data: map[string]any{
		"Agents": resp.Msg.GetAgents(), "Outbound": ob.Msg.GetEntries(), "Titles": titles,
	}})
}

func (d *Dashboard) drain(w http.ResponseWriter, r *http.Request) {
	req := &ytcaptionv1.DrainAgentRequest{NodeId: r.PathValue("node"), Undo: r.PostFormValue("undo") == "true"}
	if !req.Undo && !d.confirmed(w, r, "Drain the gpu-node", "/admin/fleet") {
		return
	}
	_, err := d.admin.DrainAgent(r.Context(), connect.NewRequest(req))
	d.then(w, r, err, "/admin/fleet")
}

func (d *Dashboard) audit(w http.ResponseWriter, r *http.Request) {
	resp, err := d.admin.ListAudit(r.Context(), connect.NewRequest(&ytcaptionv1.ListAuditRequest{Limit: 200}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names, err := d.userNames(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "audit", page{Title: "Audit log", Data: map[string]any{"Entries": resp.Msg.GetEntries(), "Users": names}})
}

func (d *Dashboard) cookies(w http.ResponseWriter, r *http.Request) {
	d.cookiesPage(w, r, http.StatusOK, "")
}

// cookiesPage renders the cookie files with an error from the last form.
func (d *Dashboard) cookiesPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	resp, err := d.admin.ListCookieFiles(r.Context(), connect.NewRequest(&ytcaptionv1.ListCookieFilesRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.renderStatus(w, r, status, "cookies", page{Title: "Cookie files", Data: resp.Msg, Error: msg})
}

// addCookies takes the file as an upload or pasted; a refused one shows the
// page again with the reason, which never quotes the file.
func (d *Dashboard) addCookies(w http.ResponseWriter, r *http.Request) {
	content := []byte(r.PostFormValue("text"))
	if f, _, err := r.FormFile("file"); err == nil {
		content, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			d.fail(w, r, err)
			return
		}
	}
	if len(content) == 0 {
		d.cookiesPage(w, r, http.StatusBadRequest, "Choose a cookies.txt file or paste one.")
		return
	}
	req := &ytcaptionv1.AddCookieFileRequest{Name: r.PostFormValue("name"), Content: string(content)}
	_, err := d.admin.AddCookieFile(r.Context(), connect.NewRequest(req))
	// A file core refuses is shown on the form, beside what to fix.
	var ce *connect.Error
	if errors.As(err, &ce) && (ce.Code() == connect.CodeInvalidArgument || ce.Code() == connect.CodeFailedPrecondition) {
		d.cookiesPage(w, r, http.StatusBadRequest, ce.Message())
		return
	}
	d.then(w, r, err, "/admin/cookies")
}

func (d *Dashboard) enableCookies(w http.ResponseWriter, r *http.Request) {
	enabled := r.PostFormValue("enabled") == "true"
	req := &ytcaptionv1.UpdateCookieFileRequest{CookieFileId: r.PathValue("id"), Enabled: &enabled}
	_, err := d.admin.UpdateCookieFile(r.Context(), connect.NewRequest(req))
	d.then(w, r, err, "/admin/cookies")
}

func (d *Dashboard) deleteCookies(w http.ResponseWriter, r *http.Request) {
	if !d.confirmed(w, r, "Delete the cookie file", "/admin/cookies") {
		return
	}
	_, err := d.admin.DeleteCookieFile(r.Context(), connect.NewRequest(&ytcaptionv1.DeleteCookieFileRequest{CookieFileId: r.PathValue("id")}))
	d.then(w, r, err, "/admin/cookies")
}
