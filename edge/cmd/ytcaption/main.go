// Command ytcaption is ytcaption's command-line client: one command from a
// media URL, or a local file it uploads, to a caption file, with live
// progress. It talks only to the edge's public REST API, so it works against
// `make run` and production alike.
//
// Help is an answer, not an error: every form of it (help, --help, -h,
// help COMMAND, COMMAND --help, jobs --help, help jobs get) prints on stdout
// and exits 0. A mistake is one line on stderr — what is wrong, the flag or
// command probably meant, and which --help to read.
//
// Exit codes a script can rely on: 0 success; 1 the job failed, was
// cancelled, or the server refused the request (its error code is printed),
// and "jobs cancel" of a job that had already succeeded or failed (one that
// was already cancelled exits 0: the job ends cancelled either way); 2 usage
// (bad flags or arguments, or input the server rejected as invalid); 3
// authentication (no key, or the key was refused); 4 network (the server
// could not be reached, stayed unavailable, or is not a ytcaption edge); 130
// interrupted.
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
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/ytcaption/ytcaption/internal/errcode"
)

var version = "dev" // set by -ldflags "-X main.version=..."

const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitAuth        = 3
	exitNetwork     = 4
	exitInterrupted = 130
)

const usage = `ytcaption turns media URLs and files into captions through a ytcaption server.

Usage:
  ytcaption transcribe URL|FILE [flags]  submit (or upload), follow with live progress, write the captions
  ytcaption transcribe PLAYLIST -o DIR/  a playlist, a channel or URL URL...: one caption file per video in DIR
  ytcaption batches list|get|cancel      your batches (playlists and lists of URLs)
  ytcaption jobs list [--limit N]        your jobs, newest first
  ytcaption jobs get ID                  one job
  ytcaption jobs cancel ID               cancel a job
  ytcaption jobs transcript ID           a finished job's captions [--format F] [-o FILE]
  ytcaption translate ID LANG            a finished job's captions translated into LANG [--format F] [-o FILE]
  ytcaption speakers rename ID 'L=NAME'  name a job's speakers ('Speaker 1=Alice'): every format shows the names
  ytcaption share create ID              a link to a finished job's captions, readable with no key [--expires 7d]
  ytcaption share list|revoke ID         a job's share links; revoke one: share revoke ID SHARE_ID
  ytcaption login                        save the server URL and API key [--url URL] [--api-key KEY]
  ytcaption version                      this client's version
  ytcaption completion bash|zsh|fish     print a shell completion script
  ytcaption help [COMMAND]               this help, or a command's

Every command takes --json for machine-readable output on stdout.
YTCAPTION_URL and YTCAPTION_API_KEY override what login saved (default server: ` + defaultURL + `).
Run "ytcaption help COMMAND" or "ytcaption COMMAND --help" for a command's flags.

Exit codes: 0 success, 1 job failed or request refused, 2 usage, 3 auth, 4 network, 130 interrupted.
With --json an error is {"error":{"code","message","exit_code"}}: the server's code (see the README's list),
or one of the client's own: usage, network, not_an_edge, already_finished, interrupted.`

// env is what a run of the command sees of the world.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	stdinTTY       bool // questions may be asked
	stderrTTY      bool // progress may be drawn in place
	stderrWidth    int  // the terminal's columns (0: not known)
	interrupts     <-chan os.Signal
}

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt)
	width, _, _ := term.GetSize(int(os.Stderr.Fd()))
	os.Exit(run(context.Background(), os.Args[1:], env{
		getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		stdinTTY: term.IsTerminal(int(os.Stdin.Fd())), stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		stderrWidth: width, interrupts: sigs,
	}))
}

// Errors that decide the exit code; anything else from the server or the
// network is classified by exitCode.
type (
	usageError  struct{ msg string }
	authError   struct{ msg string }
	jobFailed   struct{ j *job }
	interrupted struct{ id string }
	// notCancelled is "jobs cancel" of a job that had already ended
	// otherwise.
	notCancelled struct{ j *job }
	// explained says a server's refusal in a person's words; the refusal
	// still decides the exit code.
	explained struct {
		msg string
		err error
	}
)

func (e *usageError) Error() string { return e.msg }
func (e *authError) Error() string  { return e.msg }
func (e *jobFailed) Error() string {
	if e.j.Status == "cancelled" {
		return fmt.Sprintf("job %s was cancelled", e.j.ID)
	}
	code, msg := "failed", ""
	if e.j.Error != nil {
		code, msg = e.j.Error.Code, e.j.Error.Message
	}
	return fmt.Sprintf("job %s failed: %s: %s", e.j.ID, code, msg)
}
func (e *interrupted) Error() string { return "interrupted" }

// uploadPaused is Ctrl-C during an upload: what arrived is kept.
type uploadPaused struct{ name string }

func (e *uploadPaused) Error() string {
	return fmt.Sprintf("upload of %s paused: run the same command again to resume it", e.name)
}
func (e *notCancelled) Error() string {
	return fmt.Sprintf("job %s had already finished (%s): nothing to cancel", e.j.ID, e.j.Status)
}
func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func exitCode(err error) (int, string) {
	var (
		ue *usageError
		au *authError
		jf *jobFailed
		bf *batchFailed
		in *interrupted
		up *uploadPaused
		nc *notCancelled
		ae *apiError
		ne *networkError
		nx *notEdgeError
	)
	switch {
	case errors.As(err, &ue):
		return exitUsage, "usage"
	case errors.As(err, &au):
		return exitAuth, errcode.Unauthorized
	case errors.As(err, &jf):
		if jf.j.Error != nil {
			return exitFailed, jf.j.Error.Code
		}
		return exitFailed, jf.j.Status
	case errors.As(err, &bf):
		return exitFailed, bf.code()
	case errors.As(err, &in), errors.As(err, &up):
		return exitInterrupted, "interrupted"
	case errors.As(err, &nc):
		return exitFailed, "already_finished"
	case errors.As(err, &nx):
		return exitNetwork, "not_an_edge"
	case errors.As(err, &ae):
		switch {
		case ae.Code == errcode.QuotaExceeded: // a 403, but the key is fine
			return exitFailed, ae.Code
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return exitAuth, ae.Code
		case ae.Status == http.StatusBadRequest || ae.Status == http.StatusUnprocessableEntity:
			return exitUsage, ae.Code
		case ae.Status >= 500:
			return exitNetwork, ae.Code
		}
		return exitFailed, ae.Code
	case errors.As(err, &ne):
		return exitNetwork, "network"
	}
	return exitFailed, "error"
}

func run(ctx context.Context, args []string, e env) int {
	asJSON := slices.Contains(args, "--json") || slices.Contains(args, "-json")
	err := dispatch(ctx, args, e)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code, name := exitCode(err)
	fmt.Fprintf(e.stderr, "ytcaption: %v\n", err)
	var jf *jobFailed
	var bf *batchFailed
	if asJSON && !errors.As(err, &jf) && !errors.As(err, &bf) { // a failed job's (batch's) own JSON is the answer
		writeJSON(e.stdout, map[string]any{"error": map[string]any{"code": name, "message": err.Error(), "exit_code": code}})
	}
	return code
}

var commandNames = []string{"transcribe", "jobs", "batches", "translate", "speakers", "share", "login", "version", "completion", "help"}

func dispatch(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, usage)
		return usagef("a command is required")
	}
	cmd, rest := args[0], args[1:]
	if isHelp(cmd) {
		if len(rest) == 0 {
			fmt.Fprintln(e.stdout, usage)
			return flag.ErrHelp
		}
		// "help jobs get" is "jobs get --help".
		return dispatch(ctx, append(slices.Clone(rest), "--help"), e)
	}
	switch cmd {
	case "transcribe":
		return transcribe(ctx, rest, e)
	case "jobs":
		return jobs(ctx, rest, e)
	case "batches":
		return batches(ctx, rest, e)
	case "translate":
		return translateCmd(ctx, rest, e)
	case "speakers":
		return speakersCmd(ctx, rest, e)
	case "share":
		return shareCmd(ctx, rest, e)
	case "login":
		return login(ctx, rest, e)
	case "version", "--version":
		c := newCommand("version", "version [--json]", "Prints this client's version.", nil, e)
		asJSON := c.fs.Bool("json", false, "print JSON")
		if _, err := c.parse(rest); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, map[string]string{"version": version})
		}
		fmt.Fprintf(e.stdout, "ytcaption %s\n", version)
		return nil
	case "completion":
		return completion(rest, e)
	}
	return unknownWord("command", cmd, commandNames, "ytcaption help")
}

// connect returns a client for the configured server and key.
func connect(e env) (*client, config, error) {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return nil, cfg, err
	}
	if cfg.APIKey == "" {
		return nil, cfg, &authError{"no API key: run \"ytcaption login\" or set YTCAPTION_API_KEY"}
	}
	return newClient(cfg.URL, cfg.APIKey), cfg, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var (
	formatNames = []string{"srt", "vtt", "ass", "ttml", "sbv", "txt", "json", "tsv"}
	languages   = regexp.MustCompile(`^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)$`)
)

// isURL says whether s is an http(s) URL, not a file's name.
func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkOptions checks a job's options, for one job or a batch's.
func checkOptions(format, language, source, task string) error {
	if err := checkFormat(format); err != nil {
		return err
	}
	if !languages.MatchString(language) {
		return usagef("--language must be auto or a language code such as en, got %q", language)
	}
	if !slices.Contains([]string{"auto", "captions", "asr"}, source) {
		return usagef("--source must be auto, captions or asr, got %q", source)
	}
	if task != "transcribe" && task != "translate" {
		return usagef("--task must be transcribe or translate, got %q", task)
	}
	return nil
}

func checkFormat(f string) error {
	if !slices.Contains(formatNames, f) {
		return usagef("--format must be one of %s, got %q", strings.Join(formatNames, ", "), f)
	}
	return nil
}

// checkKaraoke checks --karaoke against --format: only ASS and WebVTT
// highlight words.
func checkKaraoke(f captionFormat) error {
	if f.karaoke && f.name != "ass" && f.name != "vtt" {
		return usagef("--karaoke needs --format ass or vtt, got %q", f.name)
	}
	return nil
}

// captionFormat is what captions are asked for in: the format, which is
// also the files' extension, and whether words are highlighted as spoken.
type captionFormat struct {
	name    string
	karaoke bool
	// revision is the transcript's revision to fetch (docs/editing.md):
	// nil, the latest; 0, the machine's original.
	revision *int
}

// query is the transcript request's query string.
func (f captionFormat) query() string {
	q := "format=" + url.QueryEscape(f.name)
	if f.karaoke {
		q += "&karaoke=true"
	}
	if f.revision != nil {
		q += "&revision=" + strconv.Itoa(*f.revision)
	}
	return q
}

const (
	formatUsage  = "caption `format`: srt, vtt, ass, ttml, sbv, txt, json or tsv"
	karaokeUsage = "highlight each word as it is spoken (--format ass or vtt)"
)

const transcribeAbout = `Submits URL (any page yt-dlp knows, or a direct media URL) as a job, or
uploads FILE, then follows the job with a progress bar on stderr and writes
its captions to -o FILE or stdout. Ctrl-C asks whether to cancel the job;
"no" keeps following it.

A FILE of any size the server takes is uploaded resumably (tus): Ctrl-C, a
crash or a dropped connection loses nothing, and the same command later goes
on from where it stopped.

ytcaption transcribe PLAYLIST_URL|URL URL... -o DIR/ [flags]: a YouTube
playlist or channel, several URLs, or with --batch a page listing several
media, is a batch. -o DIR/ is required; one bar shows the jobs done and
failed; each video's captions are written into DIR as it succeeds, named
after its title; the jobs that failed are listed with their error codes
(exit status 1 if any failed).`

func transcribe(ctx context.Context, args []string, e env) error {
	c := newCommand("transcribe", "transcribe URL|FILE [flags]", transcribeAbout, []string{"URL or FILE"}, e)
	c.more = true
	fs := c.fs
	format := fs.String("format", "srt", formatUsage)
	karaoke := fs.Bool("karaoke", false, karaokeUsage)
	language := fs.String("language", "auto", "spoken `language`: auto or a code such as en")
	source := fs.String("source", "auto", "`source` of the text: auto (the video's own captions when it has them), captions or asr (URLs only)")
	task := fs.String("task", "transcribe", "`task`: transcribe, or translate (English text of speech in any language)")
	prompt := fs.String("prompt", "", "`text` to guide engines that take one: spellings, names, context")
	vocabularyFlag := fs.String("vocabulary", "", "`terms` to spell as given, comma-separated (at most 100 of 64 characters): Kubernetes,Nomad")
	guardsFlag := fs.String("guards", "silence,repetition", "hallucination `guards` to run: silence, repetition (comma-separated) or none")
	webhook := fs.String("webhook-url", "", "`URL` the service POSTs the job's end to, signed (default: your account's webhook, if any)")
	out := fs.String("o", "", "write the captions to `FILE`, or into DIR/ named after the title (a batch needs DIR/; default: stdout)")
	noWait := fs.Bool("no-wait", false, "submit, print the job id and return")
	follow := fs.Bool("follow", false, "print transcript segments as they are recognised (on stderr)")
	cancelOnInterrupt := fs.Bool("cancel-on-interrupt", false, "cancel the job on Ctrl-C without asking")
	idemKey := fs.String("idempotency-key", "", "make the submission once per `key` (default: a new key per command, reused by its retries; URLs only)")
	asJSON := fs.Bool("json", false, "print the job (batch) as JSON on stdout (captions go to -o FILE or DIR only)")
	asBatch := fs.Bool("batch", false, "make a batch of URL even if it is not a YouTube playlist or channel (a page listing several media)")
	maxItems := fs.Int("max-items", 0, "a playlist's most `N` videos, 1 to 1000 (default: the server's, 100)")
	order := fs.String("order", "", "a playlist's `order`: playlist, or newest (newest first where the listing dates every entry)")
	after := fs.String("after", "", "only a playlist's videos uploaded on or after `YYYY-MM-DD`")
	before := fs.String("before", "", "only a playlist's videos uploaded on or before `YYYY-MM-DD`")
	translateTo := fs.String("translate-to", "", "also write the captions translated into these `languages` (comma-separated ISO 639-1 codes, at most 5) beside -o FILE: clip.de.srt")
	speakers := fs.Bool("speakers", false, "label who speaks (Speaker 1, Speaker 2, …) in the captions; needs a server engine that labels speakers")
	minSpeakers := fs.Int("min-speakers", 0, "with --speakers: at least `N` speakers (1 to 32; default: the engine decides)")
	maxSpeakers := fs.Int("max-speakers", 0, "with --speakers: at most `N` speakers (1 to 32; default: the engine decides)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	caption := captionFormat{name: *format, karaoke: *karaoke}
	if err := checkKaraoke(caption); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	vocabulary, err := parseVocabulary(*vocabularyFlag)
	if err != nil {
		return err
	}
	var guards map[string]bool // sent only when chosen
	if set["guards"] {
		if guards, err = parseGuards(*guardsFlag); err != nil {
			return err
		}
	}
	if *asBatch || len(pos) > 1 || isPlaylist(pos[0]) {
		for _, name := range []string{"vocabulary", "guards"} {
			if set[name] {
				return c.usageErr("--%s applies to one job, not to a batch", name)
			}
		}
		for _, u := range pos {
			if !isURL(u) {
				return c.usageErr("%q is not an http(s) URL: a batch is made of URLs (upload files one by one)", u)
			}
		}
		if *out == "" || *out == "-" {
			what := "several URLs make"
			if len(pos) == 1 {
				what = "a playlist or channel makes"
			}
			return c.usageErr("%s one caption file per video: give -o DIR/", what)
		}
		if set["follow"] {
			return c.usageErr("--follow applies to one job, not to a batch")
		}
		if *speakers || set["min-speakers"] || set["max-speakers"] {
			return c.usageErr("--speakers applies to one job, not to a batch")
		}
		if *maxItems != 0 && (*maxItems < 1 || *maxItems > 1000) {
			return c.usageErr("--max-items must be from 1 to 1000, got %d", *maxItems)
		}
		if *order != "" && *order != "playlist" && *order != "newest" {
			return c.usageErr("--order must be playlist or newest, got %q", *order)
		}
		for name, d := range map[string]string{"after": *after, "before": *before} {
			if _, err := time.Parse(time.DateOnly, d); d != "" && err != nil {
				return c.usageErr("--%s must be a date such as 2026-01-31, got %q", name, d)
			}
		}
		if err := checkOptions(*format, *language, *source, *task); err != nil {
			return err
		}
		return transcribeBatch(ctx, batchOptions{urls: pos, dir: *out, format: caption, language: *language, source: *source, task: *task,
			prompt: *prompt, webhook: *webhook, idemKey: *idemKey, order: *order, after: *after, before: *before, maxItems: *maxItems,
			noWait: *noWait, asJSON: *asJSON, cancelOnInterrupt: *cancelOnInterrupt}, e)
	}
	for _, name := range []string{"max-items", "order", "after", "before"} {
		if set[name] {
			return c.usageErr("--%s applies to a playlist or a list of URLs (with -o DIR/), not to one video", name)
		}
	}
	langs, err := parseLanguages(*translateTo)
	if err != nil {
		return err
	}
	if err := checkSpeakers(*speakers, *minSpeakers, *maxSpeakers); err != nil {
		return err
	}
	if len(langs) > 0 && (*out == "" || *out == "-" || isDirName(*out)) {
		return c.usageErr("--translate-to writes files beside the captions: give -o FILE")
	}
	media := pos[0]
	file := ""
	if !isURL(media) {
		fi, serr := os.Stat(media)
		switch {
		case serr != nil:
			return c.usageErr("%q is neither an http(s) URL nor a file", media)
		case !fi.Mode().IsRegular():
			return c.usageErr("%q is not a file to upload", media)
		case fi.Size() == 0:
			return c.usageErr("%s is empty", media)
		}
		file = media
		// A file has no captions of its own; its job's key is the upload's.
		for _, name := range []string{"source", "idempotency-key"} {
			if set[name] {
				return c.usageErr("--%s applies to URLs, not to an uploaded file", name)
			}
		}
	}
	if err := checkOptions(*format, *language, *source, *task); err != nil {
		return err
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	var j *job
	if file != "" {
		if j, err = upload(ctx, cl, file, jobOptions{language: *language, prompt: *prompt, task: *task, webhook: *webhook,
			vocabulary: vocabulary, guards: guards, speakers: *speakers, minSpeakers: *minSpeakers, maxSpeakers: *maxSpeakers}, e); err != nil {
			return err
		}
	} else {
		body := map[string]any{"url": media}
		if *language != "auto" {
			body["language"] = *language
		}
		// Sent only when chosen: servers without the fields keep working.
		if *source != "auto" {
			body["source"] = *source
		}
		if *task != "transcribe" {
			body["task"] = *task
		}
		if *prompt != "" {
			body["prompt"] = *prompt
		}
		if *webhook != "" {
			body["webhook_url"] = *webhook
		}
		if len(vocabulary) > 0 {
			body["vocabulary"] = vocabulary
		}
		if guards != nil {
			body["guards"] = guards
		}
		speakerFields(body, *speakers, *minSpeakers, *maxSpeakers)
		key := *idemKey
		if key == "" {
			key = "cli-" + rand.Text()
		}
		j = new(job)
		if _, err := cl.call(ctx, http.MethodPost, "/v1/jobs", body, http.Header{"Idempotency-Key": {key}}, j); err != nil {
			// A list the client did not recognise as one: the server says
			// it is a batch.
			var ae *apiError
			if errors.As(err, &ae) && ae.Code == errcode.InvalidURL && strings.Contains(ae.Message, "/v1/batches") {
				return &explained{fmt.Sprintf("%s is a playlist: give --batch -o DIR/ for one caption file per video (%s)", media, ae.Message), err}
			}
			return err
		}
	}
	if *noWait {
		if *asJSON {
			return writeJSON(e.stdout, j.raw)
		}
		fmt.Fprintln(e.stdout, j.ID)
		return nil
	}

	final, err := followJob(ctx, cl, j, *follow, *cancelOnInterrupt, e)
	if err != nil {
		return err
	}
	if final.Status == "succeeded" {
		var err error
		if isDirName(*out) {
			err = saveInto(ctx, cl, final, caption, *out, e)
		} else {
			err = saveTranscript(ctx, cl, final.ID, caption, *out, !*asJSON, e)
		}
		if err == nil && len(langs) > 0 {
			err = saveTranslations(ctx, cl, final.ID, *format, *out, langs, e)
		}
		if err != nil {
			return err
		}
	}
	if *asJSON {
		if err := writeJSON(e.stdout, final.raw); err != nil {
			return err
		}
	}
	if final.Status != "succeeded" {
		return &jobFailed{final}
	}
	return nil
}

// followJob shows a job's progress until it ends. Ctrl-C stops following
// and asks whether to cancel the job (cancelOnInterrupt: cancels without
// asking): yes cancels it, no follows on, and no answer — not a terminal, or
// a second Ctrl-C — leaves it running.
func followJob(ctx context.Context, cl *client, j *job, follow, cancelOnInterrupt bool, e env) (*job, error) {
	p := newProgress(e.stderr, e.stderrTTY, follow, e.stderrWidth, time.Now)
	p.job(j)
	lastID := "" // where a resumed stream picks up, so no segment shows twice
	for {
		final, wasInterrupted, err := followOnce(ctx, cl, j.ID, &lastID, p, e)
		if !wasInterrupted {
			return final, err
		}
		a := answerYes
		if !cancelOnInterrupt {
			a = ask(e, fmt.Sprintf("Cancel job %s? [y/N] (N: keep following; Ctrl-C again: quit, leaving it running) ", j.ID))
		}
		switch a {
		case answerNo:
			continue
		case answerYes:
			var c job
			if _, err := cl.call(ctx, http.MethodDelete, "/v1/jobs/"+j.ID, nil, nil, &c); err != nil {
				return nil, fmt.Errorf("cancel job %s: %w", j.ID, err)
			}
			fmt.Fprintf(e.stderr, "job %s: %s\n", j.ID, c.Status)
		default:
			fmt.Fprintf(e.stderr, "job %s keeps running; see it with: ytcaption jobs get %s\n", j.ID, j.ID)
		}
		return nil, &interrupted{j.ID}
	}
}

// redrawEvery is how often the terminal line is drawn between events, so
// the bar moves and the clock runs.
const redrawEvery = 200 * time.Millisecond

// followOnce follows the job's events until it ends, the stream fails for
// good, or Ctrl-C.
func followOnce(ctx context.Context, cl *client, id string, lastID *string, p *progress, e env) (*job, bool, error) {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	var wasInterrupted atomic.Bool
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		clock := time.NewTicker(redrawEvery)
		defer clock.Stop()
		for {
			select {
			case <-e.interrupts:
				wasInterrupted.Store(true)
				stop()
				return
			case <-clock.C:
				p.tick()
			case <-fctx.Done():
				return
			}
		}
	}()
	final, err := cl.events(fctx, id, lastID, p.job, p.segment)
	stop()
	<-watched // the watcher has stopped: the question sees the next Ctrl-C
	p.done()
	return final, wasInterrupted.Load(), err
}

type answer int

const (
	answerNone answer = iota // nobody to ask, stdin closed, or Ctrl-C again
	answerYes
	answerNo
)

// ask asks a yes/no question on a terminal; Enter means no. Elsewhere, and
// on a second Ctrl-C, there is no answer.
func ask(e env, question string) answer {
	if !e.stdinTTY {
		return answerNone
	}
	fmt.Fprint(e.stderr, question)
	type line struct {
		s   string
		err error
	}
	answers := make(chan line, 1)
	go func() { // ends with the process when nobody answers
		s, err := bufio.NewReader(e.stdin).ReadString('\n')
		answers <- line{strings.TrimSpace(s), err}
	}()
	select {
	case l := <-answers:
		switch {
		case strings.EqualFold(l.s, "y") || strings.EqualFold(l.s, "yes"):
			return answerYes
		case l.err != nil && l.s == "": // stdin closed
			return answerNone
		}
		return answerNo
	case <-e.interrupts:
		fmt.Fprintln(e.stderr)
		return answerNone
	}
}

// isDirName says whether -o names a directory: one that exists, or a
// name ending in a slash.
func isDirName(name string) bool {
	if name == "" || name == "-" {
		return false
	}
	if strings.HasSuffix(name, "/") || strings.HasSuffix(name, string(os.PathSeparator)) {
		return true
	}
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

// saveInto writes a finished job's captions into dir, named after its
// title as a batch's are (an uploaded file's name loses its extension).
func saveInto(ctx context.Context, cl *client, j *job, format captionFormat, dir string, e env) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	col, err := newCollector(cl, dir, format)
	if err != nil {
		return err
	}
	defer col.close()
	title := titleOf(j)
	if strings.HasPrefix(j.URL, "upload:") && (j.Media == nil || j.Media.Title == "") {
		title = strings.TrimSuffix(title, filepath.Ext(title))
	}
	name, err := col.write(ctx, j.ID, title)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "captions written to %s\n", filepath.Join(dir, name))
	return nil
}

// saveTranscript writes a finished job's captions to path, or stdout.
func saveTranscript(ctx context.Context, cl *client, id string, format captionFormat, path string, toStdout bool, e env) error {
	return saveCaptions(ctx, cl, id, format.query(), "captions", path, toStdout, e)
}

// saveCaptions fetches the job's transcript with query and writes it to
// path (saying so as what), or to stdout when toStdout and path is "" or "-".
func saveCaptions(ctx context.Context, cl *client, id, query, what, path string, toStdout bool, e env) error {
	b, err := cl.call(ctx, http.MethodGet, "/v1/jobs/"+id+"/transcript?"+query, nil, nil, nil)
	if err != nil {
		return err
	}
	if path == "" || path == "-" {
		if toStdout {
			_, err = e.stdout.Write(b)
		}
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "%s written to %s\n", what, path)
	return nil
}

var jobsCommands = []string{"list", "get", "cancel", "transcript"}

const jobsUsage = `Usage: ytcaption jobs SUBCOMMAND [flags]

Your jobs on the server.

Subcommands:
  list [--limit N]                       your jobs, newest first
  get ID                                 one job
  cancel ID                              cancel a job that has not finished
  transcript ID [--format F] [--revision N] [-o FILE]
                                         a finished job's captions (the latest revision)

Run "ytcaption jobs SUBCOMMAND --help" for its flags.`

// jobError says a refusal about job id in a person's words.
func jobError(id string, err error) error { return notFound("job", "jobs", id, err) }

// notFound says a not_found about the thing (a job, a batch) named id in a
// person's words, with the command that lists their ids. Other 404s —
// revision_not_found, transcript_expired — are about something else than
// the id, and keep the server's code and message.
func notFound(thing, things, id string, err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == errcode.NotFound {
		return &explained{fmt.Sprintf("no %s %s: find your %s' ids with \"ytcaption %s list\"", thing, id, things, things), err}
	}
	return err
}

func jobs(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("jobs: missing subcommand: %s (run \"ytcaption jobs --help\")", strings.Join(jobsCommands, ", "))
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) {
		if len(rest) == 0 {
			fmt.Fprintln(e.stdout, jobsUsage)
			return flag.ErrHelp
		}
		// "jobs help get" is "jobs get --help".
		return jobs(ctx, append(slices.Clone(rest), "--help"), e)
	}
	switch sub {
	case "list":
		c := newCommand("jobs list", "jobs list [--limit N] [--json]", "Lists your jobs, newest first.", nil, e)
		limit := c.fs.Int("limit", 20, "how many jobs (1 to 100)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		if _, err := c.parse(rest); err != nil {
			return err
		}
		cl, _, err := connect(e)
		if err != nil {
			return err
		}
		var page struct {
			Jobs []*job `json:"jobs"`
		}
		b, err := cl.call(ctx, http.MethodGet, fmt.Sprintf("/v1/jobs?limit=%d", *limit), nil, nil, &page)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, json.RawMessage(b))
		}
		fmt.Fprintf(e.stdout, "%-36s  %-12s  %8s  %-24s  %s\n", "ID", "STATUS", "PROGRESS", "CREATED", "URL")
		for _, j := range page.Jobs {
			fmt.Fprintf(e.stdout, "%-36s  %-12s  %7.0f%%  %-24s  %s\n", j.ID, j.Status, j.Progress*100, j.CreatedAt, j.URL)
		}
		return nil
	case "get":
		c := newCommand("jobs get", "jobs get ID [--json]", "Shows one job.", []string{"ID"}, e)
		asJSON := c.fs.Bool("json", false, "print JSON")
		pos, err := c.parse(rest)
		if err != nil {
			return err
		}
		cl, _, err := connect(e)
		if err != nil {
			return err
		}
		var j job
		if _, err := cl.call(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(pos[0]), nil, nil, &j); err != nil {
			return jobError(pos[0], err)
		}
		if *asJSON {
			return writeJSON(e.stdout, j.raw)
		}
		printJob(e.stdout, &j)
		return nil
	case "cancel":
		return cancel(ctx, rest, e)
	case "transcript":
		c := newCommand("jobs transcript", "jobs transcript ID [--format F] [--karaoke] [--revision N] [-o FILE] [--json]",
			"Writes a finished job's captions to -o FILE or stdout: the latest revision (the last edit saved), or --revision N.", []string{"ID"}, e)
		format := c.fs.String("format", "srt", formatUsage)
		karaoke := c.fs.Bool("karaoke", false, karaokeUsage)
		revision := c.fs.Int("revision", -1, "the transcript's revision `N`: 0 is the machine's original, each saved edit the next (default: the latest)")
		out := c.fs.String("o", "", "write the captions to `FILE` (default: stdout)")
		asJSON := c.fs.Bool("json", false, "print JSON")
		pos, err := c.parse(rest)
		if err != nil {
			return err
		}
		caption := captionFormat{name: *format, karaoke: *karaoke}
		if *revision >= 0 {
			caption.revision = revision
		}
		if err := checkFormat(*format); err != nil {
			return err
		}
		if err := checkKaraoke(caption); err != nil {
			return err
		}
		if *asJSON && *out == "" {
			return usagef("jobs transcript --json needs -o FILE: stdout carries the JSON answer")
		}
		cl, _, err := connect(e)
		if err != nil {
			return err
		}
		if err := saveTranscript(ctx, cl, url.PathEscape(pos[0]), caption, *out, true, e); err != nil {
			return jobError(pos[0], err)
		}
		if *asJSON {
			return writeJSON(e.stdout, map[string]string{"id": pos[0], "format": *format, "file": *out})
		}
		return nil
	}
	return unknownWord("jobs subcommand", sub, jobsCommands, "ytcaption jobs --help")
}

const cancelAbout = `Cancels a job that has not finished. Exits 0 when the job ends cancelled
(also when it already was), 1 when it had already succeeded or failed.`

// cancel reads the job first, so that cancelling a finished job says so
// instead of answering with the job unchanged.
func cancel(ctx context.Context, args []string, e env) error {
	c := newCommand("jobs cancel", "jobs cancel ID [--json]", cancelAbout, []string{"ID"}, e)
	asJSON := c.fs.Bool("json", false, "print JSON")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	path := "/v1/jobs/" + url.PathEscape(pos[0])
	var j job
	if _, err := cl.call(ctx, http.MethodGet, path, nil, nil, &j); err != nil {
		return jobError(pos[0], err)
	}
	already := j.finished()
	if !already {
		// The answer is the job as it ended: otherwise than cancelled when
		// it finished in the meantime. A server may refuse that instead
		// (409): the job, read again, says how it ended.
		_, err := cl.call(ctx, http.MethodDelete, path, nil, nil, &j)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict {
			already = true
			_, err = cl.call(ctx, http.MethodGet, path, nil, nil, &j)
		}
		if err != nil {
			return jobError(pos[0], err)
		}
	}
	if *asJSON {
		if err := writeJSON(e.stdout, j.raw); err != nil {
			return err
		}
	}
	switch {
	case j.Status != "cancelled":
		return &notCancelled{&j}
	case already:
		fmt.Fprintf(e.stderr, "job %s was already cancelled\n", j.ID)
	default:
		fmt.Fprintf(e.stderr, "job %s: cancelled\n", j.ID)
	}
	return nil
}

func printJob(w io.Writer, j *job) {
	fmt.Fprintf(w, "id:        %s\nstatus:    %s\nprogress:  %.0f%%\nurl:       %s\ncreated:   %s\n", j.ID, j.Status, j.Progress*100, j.URL, j.CreatedAt)
	if j.FinishedAt != "" {
		fmt.Fprintf(w, "finished:  %s\n", j.FinishedAt)
	}
	if j.Media != nil {
		fmt.Fprintf(w, "title:     %s\nduration:  %.1f s\n", j.Media.Title, j.Media.Duration)
	}
	if len(j.SpeakerNames) > 0 {
		fmt.Fprintf(w, "speakers:  %s\n", speakerList(j.SpeakerNames))
	}
	if j.Error != nil {
		fmt.Fprintf(w, "error:     %s: %s\n", j.Error.Code, j.Error.Message)
	}
}

const loginAbout = `Checks the edge's URL and your API key, then saves them, readable by you
only, in $XDG_CONFIG_HOME/ytcaption/config.json (or ~/.config/...). The key
is asked for, or read from stdin, when not given.`

func login(ctx context.Context, args []string, e env) error {
	c := newCommand("login", "login [--url URL] [--api-key KEY] [--json]", loginAbout, nil, e)
	server := c.fs.String("url", "", "the edge's REST `URL` (default: the saved one, or "+defaultURL+")")
	key := c.fs.String("api-key", "", "the API `key` (default: asked for, or read from stdin)")
	asJSON := c.fs.Bool("json", false, "print JSON")
	if _, err := c.parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	if *server != "" {
		cfg.URL = *server
	}
	cfg.APIKey = *key
	if cfg.APIKey == "" {
		if cfg.APIKey, err = readKey(e); err != nil {
			return err
		}
	}
	if cfg.APIKey == "" {
		return usagef("no API key given")
	}
	// Check the key before keeping it. Every edge has this route: a 404 is
	// another server, such as core's port.
	cl := newClient(cfg.URL, cfg.APIKey)
	if _, err := cl.call(ctx, http.MethodGet, "/v1/jobs?limit=1", nil, nil, nil); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return &notEdgeError{cl.base}
		}
		return err
	}
	path, err := cfg.save(e.getenv)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]string{"url": cfg.URL, "config": path})
	}
	fmt.Fprintf(e.stdout, "logged in to %s (saved in %s)\n", cfg.URL, path)
	return nil
}

// readKey asks for the key without echoing it on a terminal, or reads the
// first line of stdin.
func readKey(e env) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && e.stdinTTY {
		fmt.Fprint(e.stderr, "API key: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		return strings.TrimSpace(string(b)), err
	}
	var s string
	_, err := fmt.Fscanln(e.stdin, &s)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", usagef("reading the API key from stdin: %v", err)
	}
	return strings.TrimSpace(s), nil
}
