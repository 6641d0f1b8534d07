package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// shareServer is a contract stand-in for the edge's share-link API as
// docs/editing.md and openapi.json describe it: job j1 has two links, the
// newest pinned to revision 0 and revoked; a new link's token is tok, its
// url relative to the edge; revoking a link of j1 other than its own is
// not_found, as is anything about another job.
type shareServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string             // "METHOD path", in order
	body     map[string]any       // the last POST's
	revoked  map[string]bool      // share id → revoked by a DELETE
	reply    func() (int, string) // when set, POST's answer
}

const (
	shareA = "0b7e8a52-8f6e-4d5b-9d5e-5f2a6b1c0d01" // live, the latest revision
	shareB = "0b7e8a52-8f6e-4d5b-9d5e-5f2a6b1c0d02" // pinned to 0, revoked
	token  = "tokTOKtokTOKtokTOKtokTOKtokTOKtokTOKtokTOK_"
)

func newShareServer(t *testing.T) *shareServer {
	s := &shareServer{revoked: map[string]bool{}}
	mux := http.NewServeMux()
	notFound := func(w http.ResponseWriter, msg string) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":"not_found","message":%q}}`, msg)
	}
	mux.HandleFunc("POST /v1/jobs/j1/shares", func(w http.ResponseWriter, r *http.Request) {
		s.body = nil
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			if err := json.Unmarshal(b, &s.body); err != nil {
				t.Errorf("POST body %q: %v", b, err)
			}
		}
		if s.reply != nil {
			code, answer := s.reply()
			w.WriteHeader(code)
			fmt.Fprint(w, answer)
			return
		}
		rev := "null"
		if r, ok := s.body["revision"]; ok {
			rev = fmt.Sprint(r)
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q,"token":%q,"url":"/s/%s","expires_at":"2030-01-08T12:00:00.123456Z","revision":%s}`, shareA, token, token, rev)
	})
	mux.HandleFunc("GET /v1/jobs/j1/shares", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"shares":[
			{"id":%q,"created_at":"2030-01-02T00:00:00Z","expires_at":"2030-01-09T00:00:00Z","revoked_at":"2030-01-03T10:00:00Z","revision":0},
			{"id":%q,"created_at":"2030-01-01T00:00:00Z","expires_at":"2030-01-08T12:00:00.5Z","revoked_at":null,"revision":null}]}`, shareB, shareA)
	})
	mux.HandleFunc("DELETE /v1/jobs/j1/shares/{sid}", func(w http.ResponseWriter, r *http.Request) {
		sid := r.PathValue("sid")
		if sid != shareA && sid != shareB {
			notFound(w, "job j1 has no share link "+sid)
			return
		}
		s.revoked[sid] = true
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { notFound(w, "no job") })
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// run runs the CLI against the server: exit code, stdout, stderr.
func (s *shareServer) run(t *testing.T, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	e := testEnv(&out, &errOut)
	home := t.TempDir()
	e.getenv = func(k string) string {
		return map[string]string{"YTCAPTION_URL": s.URL, "YTCAPTION_API_KEY": "ytc_k", "HOME": home}[k]
	}
	code := run(context.Background(), args, e)
	return code, out.String(), errOut.String()
}

// TestShareCreatePrintsTheLinksPageAndWhenItExpires: the URL on stdout is
// the web app's page, made absolute on the server given; the id and expiry
// go to stderr; only the flags given are sent, as the API's fields.
func TestShareCreatePrintsTheLinksPageAndWhenItExpires(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args  []string
		sends map[string]any
		shows string
	}{
		{nil, nil, "the latest revision"},
		{[]string{"--expires", "36h"}, map[string]any{"expires_in_seconds": 129600.0}, "the latest revision"},
		{[]string{"--revision", "0", "--expires", "7d"}, map[string]any{"revision": 0.0, "expires_in_seconds": 604800.0}, "revision 0"},
		{[]string{"--expires", "1d12h", "--revision", "3"}, map[string]any{"revision": 3.0, "expires_in_seconds": 129600.0}, "revision 3"},
		{[]string{"--expires", "1m"}, map[string]any{"expires_in_seconds": 60.0}, "the latest revision"},
		{[]string{"--expires", "90d"}, map[string]any{"expires_in_seconds": 7776000.0}, "the latest revision"},
	} {
		srv := newShareServer(t)
		code, out, errOut := srv.run(t, append([]string{"share", "create", "j1"}, tc.args...)...)
		require.Equal(t, exitOK, code, errOut)
		require.Equal(t, srv.URL+"/s/"+token+"\n", out, tc.args)
		require.Equal(t, "share link "+shareA+" of job j1: expires 2030-01-08T12:00:00Z; shows "+tc.shows+"\n", errOut, tc.args)
		if tc.sends == nil {
			tc.sends = map[string]any{}
		}
		require.Equal(t, tc.sends, srv.body, tc.args)
	}

	srv := newShareServer(t)
	code, out, errOut := srv.run(t, "share", "create", "j1", "--json")
	require.Equal(t, exitOK, code, errOut)
	require.JSONEq(t, fmt.Sprintf(`{"id":%q,"token":%q,"url":%q,"expires_at":"2030-01-08T12:00:00.123456Z","revision":null}`,
		shareA, token, srv.URL+"/s/"+token), out, "the server's answer, its url absolute")
	require.Empty(t, errOut)
}

// TestTheLinksPageKeepsTheEdgesPath: an edge behind a path prefix serves
// its pages under it too, as its API; an absolute url is left alone.
func TestTheLinksPageKeepsTheEdgesPath(t *testing.T) {
	t.Parallel()
	cl := newClient("https://example.com/captions/", "k")
	require.Equal(t, "https://example.com/captions/s/"+token, cl.page("/s/"+token))
	require.Equal(t, "https://share.example.com/s/x", cl.page("https://share.example.com/s/x"))
}

// TestAJobThatCannotBeSharedExitsOneWithTheServersCode: a refusal is the
// server's code and message, exit 1; the CLI does not name the code the
// server uses for a job that has not finished or has failed.
func TestAJobThatCannotBeSharedExitsOneWithTheServersCode(t *testing.T) {
	t.Parallel()
	srv := newShareServer(t)
	srv.reply = func() (int, string) {
		return http.StatusConflict, `{"error":{"code":"some_code","message":"job j1 is running: it can be shared once it has finished"}}`
	}
	code, out, errOut := srv.run(t, "share", "create", "j1", "--json")
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: some_code: job j1 is running: it can be shared once it has finished\n", errOut)
	var e struct{ Error struct{ Code string } }
	require.NoError(t, json.Unmarshal([]byte(out), &e), out)
	require.Equal(t, "some_code", e.Error.Code)

	code, _, errOut = srv.run(t, "share", "create", "nope")
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: no job nope: find your jobs' ids with \"ytcaption jobs list\"\n", errOut)
}

// TestShareListShowsOneLinePerLink: id, the revision shown, expiry and
// whether it was revoked, in columns under a header; --json is the
// server's answer.
func TestShareListShowsOneLinePerLink(t *testing.T) {
	t.Parallel()
	srv := newShareServer(t)
	code, out, errOut := srv.run(t, "share", "list", "j1")
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^ID\s+REVISION\s+EXPIRES\s+REVOKED$`, lines[0])
	require.Regexp(t, `^`+shareB+`\s+0\s+2030-01-09T00:00:00Z\s+2030-01-03T10:00:00Z$`, lines[1])
	require.Regexp(t, `^`+shareA+`\s+latest\s+2030-01-08T12:00:00Z\s+no$`, lines[2])

	code, out, _ = srv.run(t, "share", "list", "j1", "--json")
	require.Equal(t, exitOK, code)
	var page struct{ Shares []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Len(t, page.Shares, 2)
	require.Equal(t, shareB, page.Shares[0]["id"])

	code, _, errOut = srv.run(t, "share", "list", "nope")
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: no job nope: find your jobs' ids with \"ytcaption jobs list\"\n", errOut)
}

// TestShareRevokeSaysWhichIDTheServerDidNotKnow: the server answers one
// not_found for an unknown job and for an unknown link of a known job; the
// CLI tells them apart by asking for the job's links.
func TestShareRevokeSaysWhichIDTheServerDidNotKnow(t *testing.T) {
	t.Parallel()
	srv := newShareServer(t)
	code, out, errOut := srv.run(t, "share", "revoke", "j1", shareA)
	require.Equal(t, exitOK, code, errOut)
	require.Empty(t, out)
	require.Equal(t, "share link "+shareA+" of job j1: revoked\n", errOut)
	require.True(t, srv.revoked[shareA])

	code, out, _ = srv.run(t, "share", "revoke", "j1", shareB, "--json")
	require.Equal(t, exitOK, code)
	require.JSONEq(t, `{"job_id":"j1","id":"`+shareB+`","revoked":true}`, out)

	other := "0b7e8a52-8f6e-4d5b-9d5e-5f2a6b1c0dff"
	code, _, errOut = srv.run(t, "share", "revoke", "j1", other)
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: job j1 has no share link "+other+": see its links with \"ytcaption share list j1\"\n", errOut)

	code, _, errOut = srv.run(t, "share", "revoke", "nope", other)
	require.Equal(t, exitFailed, code)
	require.Equal(t, "ytcaption: no job nope: find your jobs' ids with \"ytcaption jobs list\"\n", errOut)
}

// TestBadShareInputIsRefusedBeforeAnyRequest: each mistake is one usage
// line, exit 2, and the server hears nothing of it.
func TestBadShareInputIsRefusedBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	srv := newShareServer(t)
	for _, tc := range []struct {
		args string
		want string
	}{
		{"share", `share: missing subcommand: create, list, revoke (run "ytcaption share --help")`},
		{"share crete j1", `unknown share subcommand "crete"; did you mean create? (run "ytcaption share --help")`},
		{"share create", `share create: missing JOB; usage: ytcaption share create JOB [--revision N] [--expires DURATION] [--json] (run "ytcaption share create --help")`},
		{"share list", `share list: missing JOB; usage: ytcaption share list JOB [--json] (run "ytcaption share list --help")`},
		{"share revoke j1", `share revoke: missing SHARE_ID; usage: ytcaption share revoke JOB SHARE_ID [--json] (run "ytcaption share revoke --help")`},
		{"share create j1 j2", `share create: unexpected argument "j2" (run "ytcaption share create --help")`},
		{"share create j1 --revision -1", `share create: --revision must be 0 or more, got -1 (run "ytcaption share create --help")`},
		{"share create j1 --revision latest", `share create: invalid value "latest" for flag --revision: parse error (run "ytcaption share create --help")`},
		{"share create j1 --expires soon", `share create: --expires takes a duration such as 30m, 36h or 7d, got "soon" (run "ytcaption share create --help")`},
		{"share create j1 --expires 7", `share create: --expires takes a duration such as 30m, 36h or 7d, got "7" (run "ytcaption share create --help")`},
		{"share create j1 --expires 1.5d", `share create: --expires takes a duration such as 30m, 36h or 7d, got "1.5d" (run "ytcaption share create --help")`},
		{"share create j1 --expires 1d-1h", `share create: --expires takes a duration such as 30m, 36h or 7d, got "1d-1h" (run "ytcaption share create --help")`},
		{"share create j1 --expires 59s", `share create: --expires must be from 1m to 90d, got 59s (run "ytcaption share create --help")`},
		{"share create j1 --expires 0d", `share create: --expires must be from 1m to 90d, got 0d (run "ytcaption share create --help")`},
		{"share create j1 --expires -1h", `share create: --expires must be from 1m to 90d, got -1h (run "ytcaption share create --help")`},
		{"share create j1 --expires 91d", `share create: --expires must be from 1m to 90d, got 91d (run "ytcaption share create --help")`},
		{"share create j1 --expires 90d1s", `share create: --expires must be from 1m to 90d, got 90d1s (run "ytcaption share create --help")`},
		{"share create j1 --expires 2161h", `share create: --expires must be from 1m to 90d, got 2161h (run "ytcaption share create --help")`},
		{"share create j1 --expires 99999999999999d", `share create: --expires must be from 1m to 90d, got 99999999999999d (run "ytcaption share create --help")`},
		{"share create j1 --expires 90m0.5s", `share create: --expires counts whole seconds, got 90m0.5s (run "ytcaption share create --help")`},
		{"share create j1 --expirse 1h", `share create: unknown flag --expirse; did you mean --expires? (run "ytcaption share create --help")`},
		{"share revoke j1 " + token, `share revoke: SHARE_ID is a link's id as "ytcaption share list j1" shows it (a UUID), not its URL or token; got "` + token + `" (run "ytcaption share revoke --help")`},
		{"share revoke j1 http://localhost:8000/s/" + token, `share revoke: SHARE_ID is a link's id as "ytcaption share list j1" shows it (a UUID), not its URL or token; got "http://localhost:8000/s/` + token + `" (run "ytcaption share revoke --help")`},
	} {
		code, out, errOut := srv.run(t, strings.Fields(tc.args)...)
		require.Equal(t, exitUsage, code, tc.args)
		require.Equal(t, "ytcaption: "+tc.want+"\n", errOut, tc.args)
		require.Empty(t, out, tc.args)
	}
	require.Empty(t, srv.requests, "nothing was sent")
}

// TestShareExpiryBoundsAreTheServers: the CLI's --expires range is
// expires_in_seconds' in the API's description, so a duration the CLI
// takes is one the server takes.
func TestShareExpiryBoundsAreTheServers(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../internal/rest/openapi.json")
	require.NoError(t, err)
	var spec struct {
		Paths map[string]struct {
			Post struct {
				RequestBody struct {
					Content map[string]struct {
						Schema struct {
							Properties map[string]json.RawMessage
						}
					}
				}
			}
		}
	}
	require.NoError(t, json.Unmarshal(b, &spec))
	var expires struct{ Minimum, Maximum, Default int64 }
	prop := spec.Paths["/v1/jobs/{id}/shares"].Post.RequestBody.Content["application/json"].Schema.Properties["expires_in_seconds"]
	require.NoError(t, json.Unmarshal(prop, &expires), string(prop))
	require.Equal(t, int64(minShareExpiry/time.Second), expires.Minimum)
	require.Equal(t, int64(maxShareExpiry/time.Second), expires.Maximum)
	require.Equal(t, int64(7*24*time.Hour/time.Second), expires.Default, "--help says the default is 7d")
}
