package devstack

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// adminOperation is one operation of the OpenAPI document's /v1/admin paths,
// its path still a template ("/v1/admin/users/{user_id}").
type adminOperation struct {
	method, path string
	query        []string // the names of its query parameters
}

func adminOperations(t *testing.T) []adminOperation {
	t.Helper()
	b, err := os.ReadFile("../edge/internal/rest/openapi.json")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	var ops []adminOperation
	for path, methods := range doc.Paths {
		if !strings.HasPrefix(path, "/v1/admin/") {
			continue
		}
		for method, raw := range methods {
			if method == "parameters" {
				continue
			}
			var op struct {
				Parameters []struct{ Name, In string }
			}
			require.NoError(t, json.Unmarshal(raw, &op))
			o := adminOperation{method: strings.ToUpper(method), path: path}
			for _, p := range op.Parameters {
				if p.In == "query" {
					o.query = append(o.query, p.Name)
				}
			}
			ops = append(ops, o)
		}
	}
	return ops
}

// dashboardRoutes reads the patterns core's dashboard registers ("GET
// /admin/jobs/{id}") from its source, so a page added there is walked here
// without anyone remembering to.
func dashboardRoutes(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile("../core/internal/dashboard/dashboard.go")
	require.NoError(t, err)
	var out [][2]string
	for _, m := range regexp.MustCompile(`(?:mux\.Handle(?:Func)?\("(GET) |post\("())(/admin/[^"]*)"`).FindAllStringSubmatch(string(b), -1) {
		method := m[1]
		if method == "" {
			method = "POST"
		}
		out = append(out, [2]string{method, strings.TrimSuffix(m[3], "{$}")})
	}
	return out
}

// failedQuery matches what the SQL drivers put in an error: modernc.org/sqlite's
// "SQL logic error: no such function: strpos (1)" or "SQLITE_BUSY", pgx's
// "(SQLSTATE 42601)".
var failedQuery = regexp.MustCompile(`SQL logic error|SQLITE_|SQLSTATE|syntax error|no such (function|table|column)`)

// badLogLines returns the log lines that say something is broken: every
// ERROR (a person must act), and every WARN whose error is a failed SQL
// statement. Background loops (notifications, fetch, retention) log their
// store errors at WARN because they retry; a query that cannot run on this
// database fails every retry, so at WARN it is still a bug, and this is the
// only place such a bug shows — no request carries it. Other WARNs (a
// source that answered 404, a retried download) are the job's business.
func badLogLines(t *testing.T, log string) []string {
	t.Helper()
	var bad []string
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var l struct {
			Level, Msg string
			Err        any
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue // not a log record: a child process's own output
		}
		if (l.Level == "ERROR" || l.Level == "WARN" && l.Err != nil && failedQuery.MatchString(line)) && !seen[l.Msg] {
			seen[l.Msg] = true // a loop's failure every second, once
			bad = append(bad, line)
		}
	}
	return bad
}

// TestEveryAdminRouteAndDashboardPageOnAFreshSingleBox runs `ytcaption-dev`
// as a new user would (no server setting: SQLite and files), makes a little
// of everything — a user on a plan with a key and a webhook, a finished job
// and a failed one — and then calls every admin REST operation in the
// OpenAPI document and every dashboard route, with real ids, valid bodies
// and every query parameter filled. No answer may be a 5xx; a REST 4xx must
// be a JSON error with a code; and the process must log no ERROR and no
// failed query (badLogLines) from start to stop. The queries that only broke
// on SQLite (strpos in admin jobs, a subquery in the fleet view, the
// notifications claim) each failed one of these.
func TestEveryAdminRouteAndDashboardPageOnAFreshSingleBox(t *testing.T) {
	t.Parallel()
	media, refs := mediaServer(t)
	home := t.TempDir()
	cmd := exec.Command(goBinary(t, "./cmd/ytcaption-dev"), "--edge-addr", "127.0.0.1:0", "--connect-addr", "127.0.0.1:0",
		"--core-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data")}
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var edgeURL, key, dash string
	restAPI, apiKey, dashboard := regexp.MustCompile(`REST API:\s+(\S+)`), regexp.MustCompile(`API key:\s+(\S+)`), regexp.MustCompile(`Dashboard:\s+(\S+)/admin/`)
	sc := bufio.NewScanner(out)
	for sc.Scan() && (edgeURL == "" || key == "" || dash == "") {
		for re, v := range map[*regexp.Regexp]*string{restAPI: &edgeURL, apiKey: &key, dashboard: &dash} {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				*v = m[1]
			}
		}
	}
	require.NotEmpty(t, dash, "the dev stack did not start: %s", logs.String())
	go func() {
		for sc.Scan() {
		}
	}()

	// The data the routes' parameters name.
	admin := client{t: t, base: edgeURL, key: key}
	call := func(method, path string, body any) map[string]any {
		t.Helper()
		code, b := admin.do(method, path, body)
		require.Equal(t, http.StatusOK, code, "%s %s: %s", method, path, b)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), string(b))
		return m
	}
	hooks := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hooks.Close()
	call("PUT", "/v1/admin/plans/walk", map[string]int{"monthly_minutes": 60, "max_concurrent": 2})
	userID := call("POST", "/v1/admin/users", map[string]string{"name": "walker", "plan": "walk"})["user"].(map[string]any)["id"].(string)
	created := call("POST", "/v1/admin/users/"+userID+"/keys", map[string]string{"name": "walk"})
	keyID := created["key"].(map[string]any)["id"].(string)
	// The dashboard revokes a key of its own, so the API's rotate finds one live.
	dashKeyID := call("POST", "/v1/admin/users/"+userID+"/keys", map[string]string{"name": "dashboard"})["key"].(map[string]any)["id"].(string)
	user := client{t: t, base: edgeURL, key: created["secret"].(string)}
	code, b := user.do("POST", "/v1/jobs", map[string]string{"url": media + "/" + firstClip(refs) + ".ogg", "language": "en", "webhook_url": hooks.URL})
	require.Equal(t, http.StatusAccepted, code, string(b))
	var done jobJSON
	require.NoError(t, json.Unmarshal(b, &done))
	failed := user.create(media + "/missing.ogg")
	require.Equal(t, "succeeded", user.waitFor(done.ID, 3*time.Minute, terminal).Status, logs.String())
	require.Equal(t, "failed", user.waitFor(failed.ID, time.Minute, terminal).Status)
	// A batch of one URL, for the batches' routes and pages.
	code, b = user.do("POST", "/v1/batches", map[string]any{"urls": []string{media + "/" + firstClip(refs) + ".ogg"}, "language": "en"})
	require.Equal(t, http.StatusAccepted, code, string(b))
	var batch struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &batch))
	const node, breaker = "dev-node", "youtube"
	const cookies = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t2147483647\tPREF\tf6=40000000\n"
	addCookies := func(name string) string {
		return call("POST", "/v1/admin/cookies", map[string]string{"name": name, "content": cookies})["cookie_file"].(map[string]any)["id"].(string)
	}
	// The dashboard deletes a cookie file of its own, so the API's finds one.
	cookieID, dashCookieID := addCookies("walk"), addCookies("dashboard")

	// Every path parameter, by name; a route with one not here fails the
	// test rather than being skipped.
	pathParams := map[string]string{"id": done.ID, "user_id": userID, "key_id": keyID, "name": "walk", "node_id": node, "cookie_file_id": cookieID}
	now := time.Now().UTC()
	queryParams := map[string]string{
		"user_id": userID, "status": "failed", "url_contains": "missing", "error_code": "source_not_found",
		"created_after": now.Add(-time.Hour).Format(time.RFC3339), "created_before": now.Add(time.Hour).Format(time.RFC3339),
		"limit": "10", "page_token": batch.ID, "before": now.Add(time.Hour).Format(time.RFC3339), "from": now.Format("2006-01"), "to": now.Format("2006-01"),
	}
	bodies := map[string]any{
		"POST /v1/admin/users":                      map[string]string{"name": "walker2", "plan": "walk"},
		"PATCH /v1/admin/users/{user_id}":           map[string]any{"email": "walker@example.com", "monthly_minutes": 30, "rotate_webhook_secret": true},
		"POST /v1/admin/users/{user_id}/keys":       map[string]string{"name": "second"},
		"PUT /v1/admin/plans/{name}":                map[string]int{"monthly_minutes": 120, "max_concurrent": 3, "max_streams": 2},
		"POST /v1/admin/fleet/{node_id}/drain":      map[string]bool{"undo": true},
		"POST /v1/admin/jobs/{id}/retry":            map[string]string{},
		"POST /v1/admin/jobs/{id}/cancel":           map[string]string{},
		"POST /v1/admin/batches/{id}/cancel":        map[string]string{},
		"GET /v1/admin/batches":                     nil,
		"GET /v1/admin/batches/{id}":                nil,
		"POST /v1/admin/breakers/{name}/reset":      map[string]string{},
		"POST /v1/admin/keys/{key_id}/rotate":       map[string]string{},
		"DELETE /v1/admin/keys/{key_id}":            nil,
		"DELETE /v1/admin/users/{user_id}":          nil,
		"GET /v1/admin/users/{user_id}/keys":        nil,
		"GET /v1/admin/users/{user_id}":             nil,
		"GET /v1/admin/jobs/{id}":                   nil,
		"GET /v1/admin/jobs":                        nil,
		"GET /v1/admin/users":                       nil,
		"GET /v1/admin/plans":                       nil,
		"GET /v1/admin/usage":                       nil,
		"GET /v1/admin/fleet":                       nil,
		"GET /v1/admin/breakers":                    nil,
		"GET /v1/admin/audit":                       nil,
		"GET /v1/admin/cookies":                     nil,
		"POST /v1/admin/cookies":                    map[string]string{"name": "walk2", "content": cookies},
		"PATCH /v1/admin/cookies/{cookie_file_id}":  map[string]bool{"enabled": false},
		"DELETE /v1/admin/cookies/{cookie_file_id}": nil,
		"GET /v1/admin/outbound":                    nil,
	}
	param := regexp.MustCompile(`\{([a-z_]+)\}`)
	fill := func(op, path string, params map[string]string) string {
		return param.ReplaceAllStringFunc(path, func(p string) string {
			name := p[1 : len(p)-1]
			v, ok := params[name]
			switch {
			case name == "id" && strings.Contains(op, "/retry"):
				v = failed.ID // a failed job, so the retry is done, not refused
			case name == "id" && strings.Contains(op, "/batches/"):
				v = batch.ID
			case name == "name" && strings.Contains(op, "/breakers/"):
				v = breaker
			case name == "node" || name == "node_id":
				v, ok = node, true
			}
			require.True(t, ok, "%s: no value for path parameter %q", op, name)
			return url.PathEscape(v)
		})
	}
	rest := func(o adminOperation) {
		t.Helper()
		op := o.method + " " + o.path
		body, known := bodies[op]
		require.True(t, known, "%s is new: give it a body (or nil) in this test", op)
		paths := []string{fill(op, o.path, pathParams)}
		if len(o.query) > 0 {
			q := url.Values{}
			for _, name := range o.query {
				v, ok := queryParams[name]
				require.True(t, ok, "%s: no value for query parameter %q", op, name)
				q.Set(name, v)
			}
			paths = append(paths, paths[0]+"?"+q.Encode()) // bare, and with every filter
		}
		for _, p := range paths {
			// assert, not require: one run lists every broken route.
			code, b := admin.do(o.method, p, body)
			assert.Less(t, code, 500, "%s %s: %s", o.method, p, b)
			if code >= 400 {
				var e struct {
					Error struct{ Code, Message string }
				}
				assert.NoError(t, json.Unmarshal(b, &e), "%s %s: a refusal is JSON: %s", o.method, p, b)
				assert.NotEmpty(t, e.Error.Code, "%s %s: a refusal carries a code: %s", o.method, p, b)
			}
			t.Logf("%s %s: %d", o.method, p, code)
		}
	}

	// The dashboard, signed in with the dev stack's admin key as a person would.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	resp, err := browser.PostForm(dash+"/admin/login", url.Values{"key": {key}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/admin/", resp.Request.URL.Path, "signed in")
	var csrf string
	page := func(method, path string) {
		t.Helper()
		var resp *http.Response
		var err error
		if method == "GET" {
			resp, err = browser.Get(dash + path)
		} else {
			resp, err = browser.PostForm(dash+path, url.Values{"csrf": {csrf}, "undo": {"true"}})
		}
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Less(t, resp.StatusCode, 500, "%s %s: %s", method, path, b)
		assert.NotEqual(t, http.StatusForbidden, resp.StatusCode, "%s %s: the CSRF token was taken: %s", method, path, b)
		if m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b); m != nil {
			csrf = string(m[1])
		}
		t.Logf("dashboard %s %s: %d", method, path, resp.StatusCode)
	}
	dashParams := func(route string) string {
		params := map[string]string{"id": done.ID, "name": breaker, "node": node}
		switch {
		case strings.HasPrefix(route, "/admin/keys/"):
			params["id"] = dashKeyID
		case strings.HasPrefix(route, "/admin/users/"):
			params["id"] = userID
		case strings.HasSuffix(route, "/retry"):
			params["id"] = failed.ID
		case strings.HasPrefix(route, "/admin/batches/"):
			params["id"] = batch.ID
		case strings.HasPrefix(route, "/admin/cookies/"):
			params["id"] = dashCookieID
		}
		return param.ReplaceAllStringFunc(route, func(p string) string {
			v, ok := params[p[1:len(p)-1]]
			require.True(t, ok, "dashboard %s: no value for %s", route, p)
			return url.PathEscape(v)
		})
	}
	walkDashboard := func(methods ...string) {
		for _, r := range dashboardRoutes(t) {
			if slices.Contains(methods, r[0]) && r[1] != "/admin/logout" && r[1] != "/admin/login" {
				page(r[0], dashParams(r[1]))
			}
		}
	}

	ops := adminOperations(t)
	require.GreaterOrEqual(t, len(ops), 21)
	require.GreaterOrEqual(t, len(dashboardRoutes(t)), 15)
	// Reads first, on the data as made; then the dashboard's forms and the
	// API's changes; every read again, on what the changes left; deletions
	// last, since a deleted user takes their jobs and keys along.
	order := map[string]int{"GET": 0, "PUT": 1, "PATCH": 2, "POST": 3, "DELETE": 4}
	slices.SortFunc(ops, func(a, b adminOperation) int {
		if d := order[a.method] - order[b.method]; d != 0 {
			return d
		}
		return strings.Compare(a.path, b.path) // a key before its user
	})
	walkREST := func(methods ...string) {
		for _, o := range ops {
			if slices.Contains(methods, o.method) {
				rest(o)
			}
		}
	}
	walkREST("GET")
	walkDashboard("GET")
	walkDashboard("POST")
	walkREST("PUT", "PATCH", "POST")
	walkREST("GET")
	walkDashboard("GET")
	walkREST("DELETE")
	walkREST("GET")
	page("POST", "/admin/logout")

	// Stopped, so every line is written; a failure to stop is one too.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), logs.String())
	require.Empty(t, badLogLines(t, logs.String()), "the single box logged errors")
}
