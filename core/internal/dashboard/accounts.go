package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"connectrpc.com/connect"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// The users page makes users and keys and changes a user's plan and role;
// the plans page makes and changes plans. All go through the admin API's
// service, so they are checked and audited as the API's calls are.

type usersView struct {
	Rows  []userRow
	Plans []*ytcaptionv1.Plan
}

func (d *Dashboard) users(w http.ResponseWriter, r *http.Request) {
	resp, err := d.admin.ListUsers(r.Context(), connect.NewRequest(&ytcaptionv1.ListUsersRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	plans, err := d.admin.ListPlans(r.Context(), connect.NewRequest(&ytcaptionv1.ListPlansRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	// Every user's keys in one call, not one a user.
	keys, err := d.admin.ListKeys(r.Context(), connect.NewRequest(&ytcaptionv1.ListKeysRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	byUser := map[string][]*ytcaptionv1.ApiKey{}
	for _, k := range keys.Msg.GetKeys() {
		byUser[k.GetUserId()] = append(byUser[k.GetUserId()], k)
	}
	v := usersView{Plans: plans.Msg.GetPlans()}
	for _, u := range resp.Msg.GetUsers() {
		v.Rows = append(v.Rows, userRow{User: u, Keys: byUser[u.GetId()]})
	}
	d.render(w, r, "users", page{Title: "Users and keys", Data: v})
}

func (d *Dashboard) createUser(w http.ResponseWriter, r *http.Request) {
	req := &ytcaptionv1.CreateUserRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role"), Plan: r.PostFormValue("plan")}
	_, err := d.admin.CreateUser(r.Context(), connect.NewRequest(req))
	d.then(w, r, err, "/admin/users#user-"+url.PathEscape(req.Name))
}

// updateUser changes a user's plan and role (the fields the form sends).
func (d *Dashboard) updateUser(w http.ResponseWriter, r *http.Request) {
	req := &ytcaptionv1.UpdateUserRequest{UserId: r.PathValue("id")}
	if v := r.PostFormValue("plan"); v != "" {
		req.Plan = &v
	}
	if v := r.PostFormValue("role"); v != "" {
		req.Role = &v
	}
	_, err := d.admin.UpdateUser(r.Context(), connect.NewRequest(req))
	d.then(w, r, err, "/admin/users")
}

// createKey issues a key and shows it once, on a page of its own that is
// never cached: only its hash is kept.
func (d *Dashboard) createKey(w http.ResponseWriter, r *http.Request) {
	req := &ytcaptionv1.CreateKeyRequest{UserId: r.PathValue("id"), Name: strings.TrimSpace(r.PostFormValue("name"))}
	resp, err := d.admin.CreateKey(r.Context(), connect.NewRequest(req))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names, err := d.userNames(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "key", page{Title: "A new API key", Data: map[string]any{
		"Key": resp.Msg.GetKey(), "Secret": resp.Msg.GetSecret(), "UserName": names[req.UserId],
	}})
}

func (d *Dashboard) plans(w http.ResponseWriter, r *http.Request) {
	resp, err := d.admin.ListPlans(r.Context(), connect.NewRequest(&ytcaptionv1.ListPlansRequest{}))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "plans", page{Title: "Plans", Data: resp.Msg.GetPlans()})
}

// planFields are a plan's numbers as the form names them (the API's
// names), with what each means.
var planFields = []struct{ Name, Label string }{
	{"monthly_minutes", "Audio minutes a month (0: no limit)"},
	{"max_concurrent", "Jobs at once (0: no limit)"},
	{"create_rate", "Jobs created a second, per key"},
	{"create_burst", "…and at once"},
	{"read_rate", "Other calls a second, per key"},
	{"read_burst", "…and at once"},
	{"max_streams", "Event streams at once, per key (0: the edge's default)"},
	{"monthly_translation_chars", "Characters translated a month (0: no limit)"},
}

// setPlan creates or changes a plan from the form.
func (d *Dashboard) setPlan(w http.ResponseWriter, r *http.Request) {
	n := map[string]int32{}
	for _, f := range planFields {
		v := strings.TrimSpace(r.PostFormValue(f.Name))
		if v == "" {
			continue
		}
		i, err := strconv.ParseInt(v, 10, 32)
		if err != nil || i < 0 {
			d.fail(w, r, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s must be a whole number, 0 or more", f.Name)))
			return
		}
		n[f.Name] = int32(i)
	}
	p := &ytcaptionv1.Plan{Name: strings.TrimSpace(r.PostFormValue("name")), MonthlyMinutes: n["monthly_minutes"], MaxConcurrent: n["max_concurrent"],
		CreateRate: n["create_rate"], CreateBurst: n["create_burst"], ReadRate: n["read_rate"], ReadBurst: n["read_burst"],
		MaxStreams: n["max_streams"], MonthlyTranslationChars: n["monthly_translation_chars"]}
	_, err := d.admin.SetPlan(r.Context(), connect.NewRequest(&ytcaptionv1.SetPlanRequest{Plan: p}))
	d.then(w, r, err, "/admin/plans#plan-"+url.PathEscape(p.Name))
}

// field is one line of an audit entry's detail.
type field struct{ Key, Value string }

// auditDetail turns an audit entry's detail (JSON) into key/value lines
// with the API's snake_case names — entries written before the store named
// its fields in JSON carry Go's names — nested objects flattened to
// "plan.monthly_minutes", and user ids shown as the user's name.
func auditDetail(detail string, users map[string]string) []field {
	var v any
	if err := json.Unmarshal([]byte(detail), &v); err != nil {
		return []field{{"detail", detail}}
	}
	var out []field
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				name := snake(k)
				if prefix != "" {
					name = prefix + "." + name
				}
				walk(name, t[k])
			}
		case nil:
			out = append(out, field{prefix, "–"})
		case string:
			if n, ok := users[t]; ok && strings.HasSuffix(prefix, "user_id") {
				out = append(out, field{strings.TrimSuffix(prefix, "_id"), n})
				return
			}
			out = append(out, field{prefix, t})
		default:
			b, _ := json.Marshal(t)
			out = append(out, field{prefix, string(b)})
		}
	}
	walk("", v)
	return out
}

// snake writes a Go name (MonthlyMinutes, WebhookURL) the API's way
// (monthly_minutes, webhook_url); a snake_case name stays as it is.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// userRow is a user with their keys.
type userRow struct {
	User *ytcaptionv1.User
	Keys []*ytcaptionv1.ApiKey
}
