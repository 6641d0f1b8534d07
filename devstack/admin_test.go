package devstack

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/nomadtest"
)

// adminRoutes reads every /v1/admin operation from the edge's OpenAPI
// document (whose own test keeps it equal to the routes served).
func adminRoutes(t *testing.T) [][2]string {
	t.Helper()
	b, err := os.ReadFile("../edge/internal/rest/openapi.json")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	var out [][2]string
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/v1/admin/") {
			continue
		}
		for method := range ops {
			if method != "parameters" {
				out = append(out, [2]string{strings.ToUpper(method), param.ReplaceAllString(path, "00000000-0000-0000-0000-000000000000")})
			}
		}
	}
	return out
}

type hook struct {
	mu     sync.Mutex
	events []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct{ Type string }
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &p)
	h.mu.Lock()
	h.events = append(h.events, p.Type+" "+r.Header.Get("webhook-signature")[:3])
	h.mu.Unlock()
}

// TestAdminAPIAndQuotasThroughTheEdge drives the admin API the way an
// operator would: a user, a key, a plan with quotas; the user's jobs are held
// to it and settled with the real duration; a webhook hears of the end; the
// fleet, breakers, usage and audit log show it all; a revoked key stops.
func TestAdminAPIAndQuotasThroughTheEdge(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.AuthCacheTTL = 500 * time.Millisecond })
	media, refs := mediaServer(t)
	admin := client{t: t, base: s.EdgeURL, key: s.APIKey}
	call := func(c client, method, path string, body any, want int) map[string]any {
		t.Helper()
		code, b := c.do(method, path, body)
		require.Equal(t, want, code, "%s %s: %s", method, path, b)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), string(b))
		return out
	}

	user := call(admin, "POST", "/v1/admin/users", map[string]string{"name": "bob"}, 200)["user"].(map[string]any)
	bobID := user["id"].(string)
	require.Equal(t, "user", user["role"])
	require.True(t, strings.HasPrefix(user["webhook_secret"].(string), "whsec_"))
	created := call(admin, "POST", "/v1/admin/users/"+bobID+"/keys", map[string]string{"name": "ci"}, 200)
	bob := client{t: t, base: s.EdgeURL, key: created["secret"].(string)}
	keyID := created["key"].(map[string]any)["id"].(string)

	// A user's key gets 403 on every admin route, before anything happens.
	routes := adminRoutes(t)
	require.GreaterOrEqual(t, len(routes), 19)
	for _, r := range routes {
		code, b := bob.do(r[0], r[1], map[string]string{})
		require.Equal(t, http.StatusForbidden, code, "%s %s: %s", r[0], r[1], b)
		require.Equal(t, "forbidden", errorCode(t, b), "%s %s", r[0], r[1])
	}
	code, b := admin.do("GET", "/v1/admin/users?no_such=1", nil)
	require.Equal(t, http.StatusBadRequest, code, string(b))

	// Quotas: one job at a time, 10 minutes a month.
	plan := call(admin, "PUT", "/v1/admin/plans/solo", map[string]int{"max_concurrent": 1, "monthly_minutes": 10}, 200)["plan"].(map[string]any)
	require.Equal(t, float64(1), plan["max_concurrent"])
	call(admin, "PATCH", "/v1/admin/users/"+bobID, map[string]string{"plan": "solo"}, 200)

	h := &hook{}
	hooks := httptest.NewServer(h)
	defer hooks.Close()
	clip := firstClip(refs)
	code, b = bob.do("POST", "/v1/jobs", map[string]string{"url": media + "/" + clip + ".ogg", "language": "en", "webhook_url": hooks.URL})
	require.Equal(t, http.StatusAccepted, code, string(b))
	var j jobJSON
	require.NoError(t, json.Unmarshal(b, &j))
	code, b = bob.do("POST", "/v1/jobs", map[string]string{"url": media + "/long.ogg"})
	require.Equal(t, http.StatusForbidden, code, string(b))
	require.Equal(t, "quota_exceeded", errorCode(t, b))
	require.Contains(t, string(b), "1 of 1 concurrent jobs")

	done := bob.waitFor(j.ID, 60*time.Second, terminal)
	require.Equal(t, "succeeded", done.Status)
	account := call(bob, "GET", "/v1/account", nil, 200)
	quota := account["quota"].(map[string]any)
	require.InDelta(t, done.Media.DurationSeconds/60, quota["used_minutes"], 0.001, "settled with the probed duration")
	require.InDelta(t, 10-done.Media.DurationSeconds/60, quota["remaining_minutes"], 0.001)
	require.Equal(t, user["webhook_secret"], account["webhook_secret"])
	rotated := call(admin, "PATCH", "/v1/admin/users/"+bobID, map[string]bool{"rotate_webhook_secret": true}, 200)["user"].(map[string]any)
	require.NotEqual(t, user["webhook_secret"], rotated["webhook_secret"])
	require.Equal(t, rotated["webhook_secret"], call(bob, "GET", "/v1/account", nil, 200)["webhook_secret"], "the user sees the new secret")
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.events) == 1 && h.events[0] == "job.succeeded v1,"
	}, 10*time.Second, 50*time.Millisecond, "the job's webhook hears of its end")

	usage := call(admin, "GET", "/v1/admin/usage", nil, 200)["rows"].([]any)
	require.Len(t, usage, 1)
	row := usage[0].(map[string]any)
	require.Equal(t, "bob", row["user_name"])
	require.Equal(t, float64(1), row["jobs"])
	require.InDelta(t, done.Media.DurationSeconds/60, row["audio_minutes"], 0.001)

	found := call(admin, "GET", "/v1/admin/jobs?user_id="+bobID+"&status=succeeded", nil, 200)["jobs"].([]any)
	require.Len(t, found, 1)
	// The receiver has answered; core records that just after.
	require.Eventually(t, func() bool {
		ns := call(admin, "GET", "/v1/admin/jobs/"+j.ID, nil, 200)["notifications"].([]any)
		return len(ns) == 1 && ns[0].(map[string]any)["state"] == "delivered"
	}, 10*time.Second, 50*time.Millisecond, "the job's delivery log says delivered")

	// A job that failed for its media's own fault (a link that leads
	// nowhere) is not retried: it could only fail the same way.
	code, b = bob.do("POST", "/v1/jobs", map[string]string{"url": media + "/missing.ogg"})
	require.Equal(t, http.StatusAccepted, code, string(b))
	require.NoError(t, json.Unmarshal(b, &j))
	require.Equal(t, "failed", bob.waitFor(j.ID, 30*time.Second, terminal).Status)
	refused := call(admin, "POST", "/v1/admin/jobs/"+j.ID+"/retry", nil, http.StatusConflict)["error"].(map[string]any)
	require.Equal(t, "conflict", refused["code"])
	require.Contains(t, refused["message"], "source_not_found")

	// One that failed otherwise (a server that refused the download),
	// retried by the admin, runs (and fails) again.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusBadRequest) }))
	defer refusing.Close()
	code, b = bob.do("POST", "/v1/jobs", map[string]string{"url": refusing.URL + "/talk.ogg"})
	require.Equal(t, http.StatusAccepted, code, string(b))
	require.NoError(t, json.Unmarshal(b, &j))
	require.Equal(t, "failed", bob.waitFor(j.ID, 30*time.Second, terminal).Status)
	retried := call(admin, "POST", "/v1/admin/jobs/"+j.ID+"/retry", nil, 200)["job"].(map[string]any)
	require.Equal(t, "queued", retried["status"])
	require.Equal(t, "failed", bob.waitFor(j.ID, 30*time.Second, func(j jobJSON) bool { return j.Status == "failed" }).Status)

	fleet := call(admin, "GET", "/v1/admin/fleet", nil, 200)["agents"].([]any)
	require.Len(t, fleet, 1)
	node := fleet[0].(map[string]any)
	require.Equal(t, "dev-node", node["node_id"])
	require.Equal(t, []any{"sphinx"}, node["engines"])
	require.Equal(t, []any{"en-us"}, node["models"])

	breakers := call(admin, "GET", "/v1/admin/breakers", nil, 200)["breakers"].([]any)
	var names []string
	for _, br := range breakers {
		names = append(names, br.(map[string]any)["name"].(string))
	}
	require.Contains(t, names, "youtube")
	require.Contains(t, names, "webhook:"+strings.TrimPrefix(hooks.URL, "http://"))
	call(admin, "POST", "/v1/admin/breakers/youtube/reset", nil, 200)
	code, _ = admin.do("POST", "/v1/admin/breakers/nope/reset", nil)
	require.Equal(t, http.StatusNotFound, code)

	// Revoked: the edge refuses the key once its cache entry expires.
	call(admin, "DELETE", "/v1/admin/keys/"+keyID, nil, 200)
	require.Eventually(t, func() bool {
		code, _ := bob.do("GET", "/v1/jobs", nil)
		return code == http.StatusUnauthorized
	}, 5*time.Second, 100*time.Millisecond)

	var actions []string
	for _, e := range call(admin, "GET", "/v1/admin/audit", nil, 200)["entries"].([]any) {
		entry := e.(map[string]any)
		require.Equal(t, "admin:dev", entry["actor"])
		actions = append(actions, entry["action"].(string))
	}
	require.Equal(t, []string{"revoke_key", "reset_breaker", "retry_job", "update_user", "update_user", "set_plan", "create_key", "create_user"}, actions)
	require.False(t, math.IsNaN(done.Media.DurationSeconds))
}

// TestFleetViewAndDrainWithNomadsDocumentedWireFormat: with core pointed at
// a stand-in for Nomad's HTTP API, the fleet view joins each gpu-node with
// its Nomad node, and a drain stops new work for the node at once and drains
// its Nomad node with a deadline of at least the longest job.
func TestFleetViewAndDrainWithNomadsDocumentedWireFormat(t *testing.T) {
	t.Parallel()
	nomadAPI := nomadtest.Start(t, "", nomadtest.Node{ID: "9d1e", Name: "dev-node", Status: "ready", SchedulingEligibility: "eligible",
		Allocations: []nomadtest.Allocation{{ID: "alloc-1", JobID: "ytcaption-gpu-node", TaskGroup: "gpu-node", ClientStatus: "running", DesiredStatus: "run"}}})
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.NomadAddr = nomadAPI.URL })
	media, refs := mediaServer(t)
	admin := client{t: t, base: s.EdgeURL, key: s.APIKey}

	code, b := admin.do("GET", "/v1/admin/fleet", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	var fleet struct {
		Agents []struct {
			NodeID   string `json:"node_id"`
			Draining bool
			Nomad    *struct {
				ID, Status, Eligibility string
				Drain                   bool
				Allocations             []struct{ ID, ClientStatus string }
			}
		}
		NomadError string `json:"nomad_error"`
	}
	require.NoError(t, json.Unmarshal(b, &fleet))
	require.Empty(t, fleet.NomadError)
	require.Len(t, fleet.Agents, 1)
	require.NotNil(t, fleet.Agents[0].Nomad, string(b))
	require.Equal(t, "9d1e", fleet.Agents[0].Nomad.ID)
	require.Equal(t, "eligible", fleet.Agents[0].Nomad.Eligibility)
	require.Len(t, fleet.Agents[0].Nomad.Allocations, 1)

	code, b = admin.do("POST", "/v1/admin/fleet/dev-node/drain", map[string]int{"deadline_minutes": 5})
	require.Equal(t, http.StatusOK, code, string(b))
	var drained struct {
		Agent struct {
			Draining bool
			Nomad    struct{ Drain bool }
		}
		DeadlineMinutes int `json:"deadline_minutes"`
	}
	require.NoError(t, json.Unmarshal(b, &drained))
	require.True(t, drained.Agent.Draining)
	require.True(t, drained.Agent.Nomad.Drain)
	require.Equal(t, 240, drained.DeadlineMinutes, "raised to the longest job core takes (--max-duration, 4 h)")
	require.Equal(t, int64(4*time.Hour), nomadAPI.Drains()[0].DrainSpec.Deadline)

	// The drained node takes no new job; ending the drain lets it run.
	j := admin.create(media + "/" + firstClip(refs) + ".ogg")
	admin.waitFor(j.ID, 30*time.Second, func(j jobJSON) bool { return j.Status == "ready" })
	time.Sleep(3 * time.Second) // several of the idle node's polls
	require.Equal(t, "ready", admin.get(j.ID).Status, "a draining node is handed no job")
	code, b = admin.do("POST", "/v1/admin/fleet/dev-node/drain", map[string]bool{"undo": true})
	require.Equal(t, http.StatusOK, code, string(b))
	require.Equal(t, "succeeded", admin.waitFor(j.ID, 90*time.Second, terminal).Status)
	require.True(t, nomadAPI.Drains()[1].MarkEligible)
}
