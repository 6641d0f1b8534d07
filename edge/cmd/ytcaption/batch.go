package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/backoff"
	"github.com/ytcaption/ytcaption/internal/filename"
)

// Batches: a playlist, a channel or a list of URLs as one request, each
// entry an ordinary job (docs/batches.md). The CLI follows the batch's
// counts with one bar and writes one caption file per video into a
// directory as the jobs succeed.

// batch is the REST API's batch, as much of it as the client shows.
type batch struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	URL     string `json:"url"`
	Entries int    `json:"entries"`
	Skipped int    `json:"skipped"`
	Counts  struct {
		Total     int `json:"total"`
		Queued    int `json:"queued"`
		Running   int `json:"running"`
		Succeeded int `json:"succeeded"`
		Failed    int `json:"failed"`
		Cancelled int `json:"cancelled"`
	} `json:"counts"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	CreatedAt  string          `json:"created_at"`
	FinishedAt string          `json:"finished_at"`
	raw        json.RawMessage // the server's whole object, for --json
}

func (b *batch) UnmarshalJSON(data []byte) error {
	type plain batch
	if err := json.Unmarshal(data, (*plain)(b)); err != nil {
		return err
	}
	b.raw = append(json.RawMessage(nil), data...)
	return nil
}

func (b *batch) ended() bool {
	return b.Status == "done" || b.Status == "failed" || b.Status == "cancelled"
}

// batchFailed is a batch that ended with jobs not succeeded, or failed to
// list its source, or was cancelled.
type batchFailed struct{ b *batch }

func (e *batchFailed) Error() string {
	c := e.b.Counts
	switch {
	case e.b.Status == "cancelled":
		return fmt.Sprintf("batch %s was cancelled", e.b.ID)
	case e.b.Status == "failed" && e.b.Error != nil:
		return fmt.Sprintf("batch %s failed: %s: %s", e.b.ID, e.b.Error.Code, e.b.Error.Message)
	}
	return fmt.Sprintf("batch %s: %d of %d jobs did not succeed", e.b.ID, c.Failed+c.Cancelled, c.Total)
}

func (e *batchFailed) code() string {
	if e.b.Error != nil {
		return e.b.Error.Code
	}
	if e.b.Status == "cancelled" {
		return "cancelled"
	}
	return "failed"
}

// isPlaylist says whether u is a YouTube playlist or channel — a batch,
// which POST /v1/jobs refuses. Other sites' lists are for --batch to say.
func isPlaylist(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	if host != "youtube.com" && host != "m.youtube.com" && host != "music.youtube.com" {
		return false
	}
	p := strings.TrimSuffix(u.Path, "/")
	switch {
	case p == "/playlist":
		return true
	case strings.HasPrefix(p, "/@"), strings.HasPrefix(p, "/channel/"), strings.HasPrefix(p, "/c/"), strings.HasPrefix(p, "/user/"):
		return true
	}
	return false
}

// batchOptions are what transcribe's flags say of a batch.
type batchOptions struct {
	urls                              []string
	dir                               string
	format                            captionFormat
	language, source, task, prompt    string
	webhook, idemKey, order           string
	after, before                     string
	maxItems                          int
	noWait, asJSON, cancelOnInterrupt bool
}

func transcribeBatch(ctx context.Context, o batchOptions, e env) error {
	if fi, err := os.Stat(o.dir); err == nil && !fi.IsDir() {
		return usagef("transcribe: -o %s is a file; a batch writes one caption file per video into a directory (run \"ytcaption transcribe --help\")", o.dir)
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if len(o.urls) == 1 {
		body["url"] = o.urls[0]
	} else {
		body["urls"] = o.urls
	}
	for k, v := range map[string]string{"order": o.order, "after": o.after, "before": o.before, "prompt": o.prompt, "webhook_url": o.webhook} {
		if v != "" {
			body[k] = v
		}
	}
	// Sent only when chosen: the server's defaults stand otherwise.
	if o.language != "auto" {
		body["language"] = o.language
	}
	if o.source != "auto" {
		body["source"] = o.source
	}
	if o.task != "transcribe" {
		body["task"] = o.task
	}
	if o.maxItems > 0 {
		body["max_items"] = o.maxItems
	}
	key := o.idemKey
	if key == "" {
		key = "cli-" + rand.Text()
	}
	b := new(batch)
	if _, err := cl.call(ctx, http.MethodPost, "/v1/batches", body, http.Header{"Idempotency-Key": {key}}, b); err != nil {
		return err
	}
	if o.noWait {
		if o.asJSON {
			return writeJSON(e.stdout, b.raw)
		}
		fmt.Fprintln(e.stdout, b.ID)
		return nil
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	col, err := newCollector(cl, o.dir, o.format)
	if err != nil {
		return err
	}
	defer col.close()
	final, err := followBatch(ctx, cl, b, col, o.cancelOnInterrupt, e)
	if err != nil {
		return err
	}
	children, err := col.collect(ctx, final.ID)
	if err != nil {
		return err
	}
	for _, j := range children {
		if j.Status == "failed" || j.Status == "cancelled" {
			code, msg := j.Status, ""
			if j.Error != nil {
				code, msg = j.Error.Code, ": "+j.Error.Message
			}
			fmt.Fprintf(e.stderr, "%s  %s  %s%s\n", j.ID, titleOf(j), code, msg)
		}
	}
	if final.Skipped > 0 {
		fmt.Fprintf(e.stderr, "%d entries skipped (live streams, outside the dates, repeats or refused URLs)\n", final.Skipped)
	}
	fmt.Fprintf(e.stderr, "%d caption files written to %s\n", len(col.files), o.dir)
	if o.asJSON {
		if err := writeJSON(e.stdout, final.raw); err != nil {
			return err
		}
	}
	c := final.Counts
	if final.Status != "done" || c.Failed+c.Cancelled > 0 {
		return &batchFailed{final}
	}
	return nil
}

// followBatch shows a batch's counts until it ends, writing each job's
// captions as it succeeds. Ctrl-C asks whether to cancel the batch, as
// followJob does for a job.
func followBatch(ctx context.Context, cl *client, b *batch, col *collector, cancelOnInterrupt bool, e env) (*batch, error) {
	p := newProgress(e.stderr, e.stderrTTY, false, e.stderrWidth, time.Now)
	p.batch(b)
	succeeded := 0
	for {
		fctx, stop := onInterrupt(ctx, e, p.tick)
		final, err := watchBatch(fctx, cl, b.ID, func(nb *batch) error {
			p.batch(nb)
			if nb.Counts.Succeeded == succeeded {
				return nil
			}
			succeeded = nb.Counts.Succeeded
			_, err := col.collect(fctx, nb.ID)
			return err
		})
		wasInterrupted := stop()
		p.done()
		if !wasInterrupted {
			return final, err
		}
		a := answerYes
		if !cancelOnInterrupt {
			a = ask(e, fmt.Sprintf("Cancel batch %s? [y/N] (N: keep following; Ctrl-C again: quit, leaving it running) ", b.ID))
		}
		switch a {
		case answerNo:
			continue
		case answerYes:
			var c batch
			if _, err := cl.call(ctx, http.MethodDelete, "/v1/batches/"+url.PathEscape(b.ID), nil, nil, &c); err != nil {
				return nil, fmt.Errorf("cancel batch %s: %w", b.ID, err)
			}
			fmt.Fprintf(e.stderr, "batch %s: %s\n", b.ID, c.Status)
		default:
			fmt.Fprintf(e.stderr, "batch %s keeps running; see it with: ytcaption batches get %s\n", b.ID, b.ID)
		}
		return nil, &interrupted{b.ID}
	}
}

// batchPollEvery is how often a batch is read when the server has no
// event stream for it.
const batchPollEvery = time.Second

// watchBatch calls on with the batch at every change until it ends: from
// its event stream, reconnecting when it breaks, or by reading it each
// second from a server without one.
func watchBatch(ctx context.Context, cl *client, id string, on func(*batch) error) (*batch, error) {
	var last *batch
	path := "/v1/batches/" + url.PathEscape(id)
	failures := 0
	for {
		progressed := false
		err := cl.sse(ctx, path+"/events", func(event, data string) (bool, error) {
			if event != "batch" {
				return false, nil
			}
			b := new(batch)
			if err := json.Unmarshal([]byte(data), b); err != nil {
				return true, fmt.Errorf("a batch event is not JSON: %w", err)
			}
			last, progressed = b, true
			return b.ended(), on(b)
		})
		if last != nil && last.ended() && err == nil {
			return last, nil
		}
		var ae *apiError
		var nx *notEdgeError
		if !progressed && (errors.As(err, &nx) || errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
			return pollBatch(ctx, cl, path, on)
		}
		if err == nil {
			err = &networkError{err: errors.New("the batch's event stream ended before the batch did")}
		}
		if progressed {
			failures = 0
		}
		if failures++; !retryable(err) || failures >= cl.tries || ctx.Err() != nil {
			return nil, err
		}
		backoff.Sleep(ctx, backoff.Full(failures, 250*time.Millisecond, 5*time.Second))
	}
}

func pollBatch(ctx context.Context, cl *client, path string, on func(*batch) error) (*batch, error) {
	for {
		b := new(batch)
		if _, err := cl.call(ctx, http.MethodGet, path, nil, nil, b); err != nil {
			return nil, err
		}
		if err := on(b); err != nil || b.ended() {
			return b, err
		}
		// Jittered, so many clients started together do not poll together.
		backoff.Sleep(ctx, batchPollEvery/2+backoff.Full(1, batchPollEvery, batchPollEvery))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// sse reads one connection's Server-Sent Events, calling on with each
// event's name and data until on says stop or the stream ends (nil).
func (c *client) sse(ctx context.Context, path string, on func(event, data string) (stop bool, err error)) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil, http.Header{"Accept": {"text/event-stream"}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var event string
	var data strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				if stop, err := on(event, data.String()); stop || err != nil {
					return err
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &networkError{err: err}
	}
	return nil
}

// collector writes a batch's captions into its directory, one file per
// succeeded job, each once. Titles are anyone's: a file is named after a
// cleaned title and written through an os.Root of the directory, so no
// title ("../../etc/passwd", a symlink planted in the directory) puts a
// byte outside it.
type collector struct {
	cl      *client
	dir     string
	root    *os.Root
	format  captionFormat
	written map[string]bool // job ids
	used    map[string]bool // lower-cased names
	files   []string
}

func newCollector(cl *client, dir string, format captionFormat) (*collector, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &collector{cl: cl, dir: dir, root: root, format: format, written: map[string]bool{}, used: map[string]bool{}}, nil
}

func (c *collector) close() { c.root.Close() }

// collect lists the batch's jobs, in its order, and writes the captions of
// those succeeded since the last call.
func (c *collector) collect(ctx context.Context, id string) ([]*job, error) {
	var all []*job
	for cursor := ""; ; {
		var page struct {
			Jobs       []*job `json:"jobs"`
			NextCursor string `json:"next_cursor"`
		}
		q := "?limit=1000"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		if _, err := c.cl.call(ctx, http.MethodGet, "/v1/batches/"+url.PathEscape(id)+"/jobs"+q, nil, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Jobs...)
		if cursor = page.NextCursor; cursor == "" || len(page.Jobs) == 0 {
			break
		}
	}
	for _, j := range all {
		if j.Status != "succeeded" || c.written[j.ID] {
			continue
		}
		if _, err := c.write(ctx, j.ID, titleOf(j)); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// write fetches job id's captions and writes them under a name made of
// title, which it returns.
func (c *collector) write(ctx context.Context, id, title string) (string, error) {
	b, err := c.cl.call(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/transcript?"+c.format.query(), nil, nil, nil)
	if err != nil {
		return "", fmt.Errorf("captions of job %s: %w", id, err)
	}
	name := filename.Unique(c.used, filename.Safe(title, id), c.format.name)
	if !filepath.IsLocal(name) || strings.ContainsAny(name, `/\`) { // safeName's promise, checked where it counts
		return "", fmt.Errorf("job %s: refusing the file name %q", id, name)
	}
	if err := c.root.WriteFile(name, b, 0o644); err != nil {
		return "", fmt.Errorf("write captions of job %s: %w", id, err)
	}
	c.written[id] = true
	c.files = append(c.files, name)
	return name, nil
}

var batchesCommands = []string{"list", "get", "cancel"}

const batchesUsage = `Usage: ytcaption batches SUBCOMMAND [flags]

Your batches on the server: playlists, channels and lists of URLs, made by
"ytcaption transcribe PLAYLIST_URL -o DIR/" or "transcribe URL URL... -o DIR/".

Subcommands:
  list [--limit N]                       your batches, newest first
  get ID                                 one batch and its counts
  cancel ID                              cancel what is left of a batch

Run "ytcaption batches SUBCOMMAND --help" for its flags.`

// batchError says a refusal about batch id in a person's words.
func batchError(id string, err error) error { return notFound("batch", "batches", id, err) }

func batches(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("batches: missing subcommand: %s (run \"ytcaption batches --help\")", strings.Join(batchesCommands, ", "))
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) {
		if len(rest) == 0 {
			fmt.Fprintln(e.stdout, batchesUsage)
			return flag.ErrHelp
		}
		return batches(ctx, append(slices.Clone(rest), "--help"), e)
	}
	switch sub {
	case "list":
		c := newCommand("batches list", "batches list [--limit N] [--json]", "Lists your batches, newest first.", nil, e)
		limit := c.fs.Int("limit", 20, "how many batches (1 to 100)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		if _, err := c.parse(rest); err != nil {
			return err
		}
		if *limit < 1 || *limit > 100 {
			return c.usageErr("--limit must be from 1 to 100, got %d", *limit)
		}
		cl, _, err := connect(e)
		if err != nil {
			return err
		}
		var page struct {
			Batches []*batch `json:"batches"`
		}
		b, err := cl.call(ctx, http.MethodGet, fmt.Sprintf("/v1/batches?limit=%d", *limit), nil, nil, &page)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, json.RawMessage(b))
		}
		fmt.Fprintf(e.stdout, "%-36s  %-11s  %9s  %6s  %-24s  %s\n", "ID", "STATUS", "DONE", "FAILED", "CREATED", "SOURCE")
		for _, b := range page.Batches {
			c := b.Counts
			fmt.Fprintf(e.stdout, "%-36s  %-11s  %9s  %6d  %-24s  %s\n", b.ID, b.Status,
				fmt.Sprintf("%d/%d", c.Succeeded+c.Failed+c.Cancelled, c.Total), c.Failed+c.Cancelled, b.CreatedAt, sourceOf(b))
		}
		return nil
	case "get":
		c := newCommand("batches get", "batches get ID [--json]", "Shows one batch and its jobs' counts.", []string{"ID"}, e)
		asJSON := c.fs.Bool("json", false, "print JSON")
		pos, err := c.parse(rest)
		if err != nil {
			return err
		}
		cl, _, err := connect(e)
		if err != nil {
			return err
		}
		var b batch
		if _, err := cl.call(ctx, http.MethodGet, "/v1/batches/"+url.PathEscape(pos[0]), nil, nil, &b); err != nil {
			return batchError(pos[0], err)
		}
		if *asJSON {
			return writeJSON(e.stdout, b.raw)
		}
		printBatch(e.stdout, &b)
		return nil
	case "cancel":
		return cancelBatch(ctx, rest, e)
	}
	return unknownWord("batches subcommand", sub, batchesCommands, "ytcaption batches --help")
}

const cancelBatchAbout = `Cancels what is left of a batch: its listing stops and its jobs that have
not finished are cancelled; finished ones keep their captions. Exits 0 when
the batch ends cancelled (also when it already was), 1 when it had already
ended otherwise.`

func cancelBatch(ctx context.Context, args []string, e env) error {
	c := newCommand("batches cancel", "batches cancel ID [--json]", cancelBatchAbout, []string{"ID"}, e)
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	path := "/v1/batches/" + url.PathEscape(pos[0])
	var b batch
	if _, err := cl.call(ctx, http.MethodGet, path, nil, nil, &b); err != nil {
		return batchError(pos[0], err)
	}
	already := b.ended()
	if !already {
		if _, err := cl.call(ctx, http.MethodDelete, path, nil, nil, &b); err != nil {
			return batchError(pos[0], err)
		}
	}
	if *asJSON {
		if err := writeJSON(e.stdout, b.raw); err != nil {
			return err
		}
	}
	switch {
	case b.Status != "cancelled":
		return &explained{fmt.Sprintf("batch %s had already ended (%s): nothing to cancel", b.ID, b.Status), &notCancelled{&job{ID: b.ID, Status: b.Status}}}
	case already:
		fmt.Fprintf(e.stderr, "batch %s was already cancelled\n", b.ID)
	default:
		fmt.Fprintf(e.stderr, "batch %s: cancelled (%d of %d jobs had succeeded)\n", b.ID, b.Counts.Succeeded, b.Counts.Total)
	}
	return nil
}

// sourceOf is what a batch was made from, in a few words.
func sourceOf(b *batch) string {
	if b.URL != "" {
		return b.URL
	}
	return fmt.Sprintf("a list of %d URLs", b.Counts.Total)
}

func printBatch(w io.Writer, b *batch) {
	c := b.Counts
	fmt.Fprintf(w, "id:         %s\nstatus:     %s\nsource:     %s\ncreated:    %s\n", b.ID, b.Status, sourceOf(b), b.CreatedAt)
	if b.FinishedAt != "" {
		fmt.Fprintf(w, "finished:   %s\n", b.FinishedAt)
	}
	fmt.Fprintf(w, "jobs:       %d (queued %d, running %d, succeeded %d, failed %d, cancelled %d)\n",
		c.Total, c.Queued, c.Running, c.Succeeded, c.Failed, c.Cancelled)
	if b.Skipped > 0 {
		fmt.Fprintf(w, "skipped:    %d\n", b.Skipped)
	}
	if b.Error != nil {
		fmt.Fprintf(w, "error:      %s: %s\n", b.Error.Code, b.Error.Message)
	}
}
