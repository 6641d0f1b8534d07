package devstack

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCLIShareLinks drives ytcaption share against the whole stack: the
// link share create prints is the web app's page on the edge, and its
// token opens the job's transcript with no key; share list shows the link;
// after share revoke the link opens nothing, as an unknown one.
func TestCLIShareLinks(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	media, refs := mediaServer(t)
	env := cliEnv(t, s)
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	anybody := client{t: t, base: s.EdgeURL} // no key
	j := api.create(media + "/" + firstClip(refs) + ".ogg")
	require.Equal(t, "succeeded", api.waitFor(j.ID, 3*time.Minute, terminal).Status)

	r := runCLI(t, env, "share", "create", j.ID, "--expires", "1d12h")
	require.Equal(t, 0, r.code, r.stderr)
	link := strings.TrimSpace(r.stdout)
	token, ok := strings.CutPrefix(link, s.EdgeURL+"/s/")
	require.True(t, ok, "the web app's page on the edge given: %q", link)
	m := regexp.MustCompile(`^share link (\S+) of job ` + j.ID + `: expires (\S+); shows the latest revision\n$`).FindStringSubmatch(r.stderr)
	require.NotNil(t, m, r.stderr)
	shareID, expires := m[1], m[2]
	at, err := time.Parse(time.RFC3339, expires)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(36*time.Hour), at, time.Minute, "--expires 1d12h")

	t.Run("the link opens with no key", func(t *testing.T) {
		code, page := anybody.do(http.MethodGet, strings.TrimPrefix(link, s.EdgeURL), nil)
		require.Equal(t, http.StatusOK, code, "the page the link names")
		require.Contains(t, strings.ToLower(string(page)), "<!doctype html>")
		code, shared := anybody.do(http.MethodGet, "/v1/shared/"+token+"/transcript?format=srt", nil)
		require.Equal(t, http.StatusOK, code, string(shared))
		_, own := api.do(http.MethodGet, "/v1/jobs/"+j.ID+"/transcript?format=srt", nil)
		require.Equal(t, string(own), string(shared), "the job's captions")
		require.Regexp(t, `(?m)^1\n00:00:\d\d,\d{3} --> `, string(shared))
	})

	t.Run("share list shows it", func(t *testing.T) {
		r := runCLI(t, env, "share", "list", j.ID)
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `^ID\s+REVISION\s+EXPIRES\s+REVOKED\n`+shareID+`\s+latest\s+`+regexp.QuoteMeta(expires)+`\s+no\n$`, r.stdout)
	})

	t.Run("once revoked it opens nothing", func(t *testing.T) {
		r := runCLI(t, env, "share", "revoke", j.ID, shareID)
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "share link "+shareID+" of job "+j.ID+": revoked\n", r.stderr)
		for _, path := range []string{"/v1/shared/" + token, "/v1/shared/" + token + "/transcript?format=srt"} {
			code, b := anybody.do(http.MethodGet, path, nil)
			require.Equal(t, http.StatusNotFound, code, path)
			require.Equal(t, "share_not_found", errorCode(t, b), path)
		}

		r = runCLI(t, env, "share", "list", j.ID, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var page struct {
			Shares []struct {
				ID        string     `json:"id"`
				RevokedAt *time.Time `json:"revoked_at"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &page), r.stdout)
		require.Len(t, page.Shares, 1)
		require.Equal(t, shareID, page.Shares[0].ID)
		require.NotNil(t, page.Shares[0].RevokedAt, "listed as revoked")

		r = runCLI(t, env, "share", "revoke", j.ID, shareID)
		require.Equal(t, 0, r.code, "revoking a revoked link changes nothing: %s", r.stderr)
		other := "00000000-0000-4000-8000-000000000000"
		r = runCLI(t, env, "share", "revoke", j.ID, other)
		require.Equal(t, 1, r.code)
		require.Equal(t, "ytcaption: job "+j.ID+" has no share link "+other+": see its links with \"ytcaption share list "+j.ID+"\"\n", r.stderr)
	})
}
