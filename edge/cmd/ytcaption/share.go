package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var shareCommands = []string{"create", "list", "revoke"}

const shareUsage = `Usage: ytcaption share SUBCOMMAND [flags]

Share links of a finished job: whoever holds one reads the job's captions,
with no API key, until the link expires or is revoked.

Subcommands:
  create JOB [--revision N] [--expires DURATION]
                          make a link: its URL (shown this once) and when it expires
  list JOB                the job's links: id, revision, expiry, revoked
  revoke JOB SHARE_ID     revoke a link at once

Run "ytcaption share SUBCOMMAND --help" for its flags.`

// A link lives from minShareExpiry to maxShareExpiry: the server's bounds
// (core's api.MinShareTTL and MaxShareTTL, expires_in_seconds in
// openapi.json), checked here before anything is sent.
const (
	minShareExpiry = time.Minute
	maxShareExpiry = 90 * 24 * time.Hour
)

// shareID is a link's id as share list shows it. People who paste the
// link's URL or token instead are told so before the server says not_found.
var shareID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// shareLink is a share link as the server shows it to its owner.
type shareLink struct {
	ID        string     `json:"id"`
	URL       string     `json:"url"` // in create's answer only: the web app's page, relative to the edge
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	Revision  *int       `json:"revision"` // nil: the latest when the link is opened
}

// shows is the revision the link shows.
func (l shareLink) shows() string {
	if l.Revision == nil {
		return "latest"
	}
	return strconv.Itoa(*l.Revision)
}

// shareCmd is "ytcaption share": a job's share links.
func shareCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("share: missing subcommand: %s (run \"ytcaption share --help\")", strings.Join(shareCommands, ", "))
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) {
		if len(rest) == 0 {
			fmt.Fprintln(e.stdout, shareUsage)
			return flag.ErrHelp
		}
		// "share help create" is "share create --help".
		return shareCmd(ctx, append(slices.Clone(rest), "--help"), e)
	}
	switch sub {
	case "create":
		return shareCreate(ctx, rest, e)
	case "list":
		return shareList(ctx, rest, e)
	case "revoke":
		return shareRevoke(ctx, rest, e)
	}
	return unknownWord("share subcommand", sub, shareCommands, "ytcaption share --help")
}

const shareCreateAbout = `Makes a share link of a finished job and prints its URL on stdout: the web
app's page where whoever holds it reads and downloads the captions and plays
the audio, with no API key. The link's id (for share revoke) and when it
expires go to stderr. The URL holds the link's secret token and is shown this
once: if it is lost, revoke the link and make another. A job has at most 50
live links.`

func shareCreate(ctx context.Context, args []string, e env) error {
	c := newCommand("share create", "share create JOB [--revision N] [--expires DURATION] [--json]", shareCreateAbout, []string{"JOB"}, e)
	revision := c.fs.Int("revision", 0, "show revision `N` of the transcript: 0 is the machine's original, each saved edit the next (default: the latest when the link is opened)")
	expires := c.fs.String("expires", "", "how long the link lives, a `duration` from 1m to 90d: 30m, 36h, 7d, 1d12h (default: the server's, 7d)")
	asJSON := c.fs.Bool("json", false, "print the link as JSON, its url made absolute")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	id := pos[0]
	body := map[string]any{}
	if c.given("revision") {
		if *revision < 0 {
			return c.usageErr("--revision must be 0 or more, got %d", *revision)
		}
		body["revision"] = *revision
	}
	if c.given("expires") {
		ttl, err := parseExpiry(*expires)
		if err != nil {
			return c.usageErr("%v", err)
		}
		body["expires_in_seconds"] = int64(ttl / time.Second)
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	var answer map[string]any // the server's whole object, for --json
	b, err := cl.call(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/shares", body, nil, &answer)
	if err != nil {
		return jobError(id, err)
	}
	var l shareLink
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("the server's answer is not the JSON expected: %w", err)
	}
	page := cl.page(l.URL)
	if *asJSON {
		answer["url"] = page
		return writeJSON(e.stdout, answer)
	}
	fmt.Fprintln(e.stdout, page)
	fmt.Fprintf(e.stderr, "share link %s of job %s: expires %s; shows %s\n", l.ID, id, l.ExpiresAt.Format(time.RFC3339), revisionWords(l))
	return nil
}

// revisionWords says which revision a link shows, for a sentence.
func revisionWords(l shareLink) string {
	if l.Revision == nil {
		return "the latest revision"
	}
	return "revision " + strconv.Itoa(*l.Revision)
}

// parseExpiry reads --expires: a Go duration ("36h", "90m"), whole days
// ("7d") or both ("1d12h"), from minShareExpiry to maxShareExpiry in whole
// seconds — the server counts seconds. Its errors name the input as typed.
func parseExpiry(s string) (time.Duration, error) {
	bad := fmt.Errorf("--expires takes a duration such as 30m, 36h or 7d, got %q", s)
	outOfRange := fmt.Errorf("--expires must be from 1m to 90d, got %s", s)
	var days, rest time.Duration
	n, after, hasDays := strings.Cut(s, "d") // no unit of Go's has a d
	if hasDays {
		d, err := strconv.Atoi(n)
		switch {
		case err != nil:
			return 0, bad
		case d < 0 || d > int(maxShareExpiry/(24*time.Hour)): // before multiplying: no overflow
			return 0, outOfRange
		}
		days = time.Duration(d) * 24 * time.Hour
	} else {
		after = s
	}
	if after != "" || !hasDays {
		var err error
		if rest, err = time.ParseDuration(after); err != nil || (hasDays && rest < 0) { // "1d-1h"
			return 0, bad
		}
	}
	switch ttl := days + rest; {
	case ttl < minShareExpiry || ttl > maxShareExpiry:
		return 0, outOfRange
	case ttl%time.Second != 0:
		return 0, fmt.Errorf("--expires counts whole seconds, got %s", s)
	default:
		return ttl, nil
	}
}

const shareListAbout = `Lists a job's share links, newest first: live, expired and revoked. Each
shows its id (for share revoke), the revision it shows (pinned, or the
latest when opened), when it expires, and whether it was revoked. The links'
URLs are not shown again: the server keeps only a hash of each token.`

func shareList(ctx context.Context, args []string, e env) error {
	c := newCommand("share list", "share list JOB [--json]", shareListAbout, []string{"JOB"}, e)
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	id := pos[0]
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	var page struct {
		Shares []shareLink `json:"shares"`
	}
	b, err := cl.call(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/shares", nil, nil, &page)
	if err != nil {
		return jobError(id, err)
	}
	if *asJSON {
		return writeJSON(e.stdout, json.RawMessage(b))
	}
	fmt.Fprintf(e.stdout, "%-36s  %-8s  %-25s  %s\n", "ID", "REVISION", "EXPIRES", "REVOKED")
	for _, l := range page.Shares {
		revoked := "no"
		if l.RevokedAt != nil {
			revoked = l.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(e.stdout, "%-36s  %-8s  %-25s  %s\n", l.ID, l.shows(), l.ExpiresAt.Format(time.RFC3339), revoked)
	}
	return nil
}

const shareRevokeAbout = `Revokes a share link of a job at once: from then on it opens nothing, as an
unknown link does. Revoking a revoked link changes nothing. SHARE_ID is the
id share list shows, not the link's URL.`

func shareRevoke(ctx context.Context, args []string, e env) error {
	c := newCommand("share revoke", "share revoke JOB SHARE_ID [--json]", shareRevokeAbout, []string{"JOB", "SHARE_ID"}, e)
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	id, sid := pos[0], pos[1]
	if !shareID.MatchString(sid) {
		return c.usageErr("SHARE_ID is a link's id as \"ytcaption share list %s\" shows it (a UUID), not its URL or token; got %q", id, sid)
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	jobPath := "/v1/jobs/" + url.PathEscape(id)
	if _, err := cl.call(ctx, http.MethodDelete, jobPath+"/shares/"+url.PathEscape(sid), nil, nil, nil); err != nil {
		return revokeError(ctx, cl, id, sid, err)
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"job_id": id, "id": sid, "revoked": true})
	}
	fmt.Fprintf(e.stderr, "share link %s of job %s: revoked\n", sid, id)
	return nil
}

// revokeError says which of the two ids the server did not know: both are
// one not_found, so a 404 asks for the job's links.
func revokeError(ctx context.Context, cl *client, id, sid string, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		return err
	}
	_, lerr := cl.call(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/shares", nil, nil, nil)
	switch {
	case lerr == nil:
		return &explained{fmt.Sprintf("job %s has no share link %s: see its links with \"ytcaption share list %s\"", id, sid, id), err}
	case errors.As(lerr, &ae) && ae.Status == http.StatusNotFound:
		return jobError(id, err)
	}
	return err
}

// page is the absolute URL of ref, a page the server named relative to
// itself (an absolute ref stays as it is): the edge's URL, with any path
// it has, as every API call is made.
func (c *client) page(ref string) string {
	if u, err := url.Parse(ref); err == nil && u.IsAbs() {
		return ref
	}
	return c.base + ref
}
