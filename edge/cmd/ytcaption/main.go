// Command ytcaption is ytcaption's command-line client: one command from a
// media URL to a caption file, with live progress. It talks only to the
// edge's public REST API, so it works against `make run` and production alike.
//
// Exit codes a script can rely on: 0 success; 1 the job failed, was
// cancelled, or the server refused the request (its error code is printed);
// 2 usage (bad flags or arguments, or input the server rejected as invalid);
// 3 authentication (no key, or the key was refused); 4 network (the server
// could not be reached or stayed unavailable); 130 interrupted.
package main

import (
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
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"
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

const usage = `ytcaption turns media URLs into captions through a ytcaption server.

Usage:
  ytcaption transcribe URL [flags]   submit, follow with live progress, write the captions
  ytcaption jobs list [--limit N]    your jobs, newest first
  ytcaption jobs get ID              one job
  ytcaption jobs cancel ID           cancel a job
  ytcaption jobs transcript ID       a finished job's captions [--format F] [-o FILE]
  ytcaption login                    save the server URL and API key [--url URL] [--api-key KEY]
  ytcaption version                  this client's version
  ytcaption completion bash|zsh|fish print a shell completion script

Every command takes --json for machine-readable output on stdout.
YTCAPTION_URL and YTCAPTION_API_KEY override what login saved (default server: ` + defaultURL + `).
Run "ytcaption <command> --help" for a command's flags.

Exit codes: 0 success, 1 job failed or request refused, 2 usage, 3 auth, 4 network, 130 interrupted.`

// env is what a run of the command sees of the world.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	stdinTTY       bool // questions may be asked
	stderrTTY      bool // progress may be drawn in place
	interrupts     <-chan os.Signal
}

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt)
	os.Exit(run(context.Background(), os.Args[1:], env{
		getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		stdinTTY: term.IsTerminal(int(os.Stdin.Fd())), stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		interrupts: sigs,
	}))
}

// Errors that decide the exit code; anything else from the server or the
// network is classified by exitCode.
type (
	usageError  struct{ msg string }
	authError   struct{ msg string }
	jobFailed   struct{ j *job }
	interrupted struct{ id string }
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

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func exitCode(err error) (int, string) {
	var (
		ue *usageError
		au *authError
		jf *jobFailed
		in *interrupted
		ae *apiError
		ne *networkError
	)
	switch {
	case errors.As(err, &ue):
		return exitUsage, "usage"
	case errors.As(err, &au):
		return exitAuth, "unauthorized"
	case errors.As(err, &jf):
		if jf.j.Error != nil {
			return exitFailed, jf.j.Error.Code
		}
		return exitFailed, jf.j.Status
	case errors.As(err, &in):
		return exitInterrupted, "interrupted"
	case errors.As(err, &ae):
		switch {
		case ae.Code == "quota_exceeded": // a 403, but the key is fine
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
	if asJSON && !errors.As(err, &jf) { // a failed job's own JSON is the answer
		writeJSON(e.stdout, map[string]any{"error": map[string]any{"code": name, "message": err.Error(), "exit_code": code}})
	}
	return code
}

func dispatch(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, usage)
		return &usageError{"a command is required"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "transcribe":
		return transcribe(ctx, rest, e)
	case "jobs":
		return jobs(ctx, rest, e)
	case "login":
		return login(ctx, rest, e)
	case "version", "--version":
		fs := newFlags("version", "ytcaption version [--json]", e)
		asJSON := fs.Bool("json", false, "print JSON")
		if _, err := parseArgs(fs, rest, 0); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, map[string]string{"version": version})
		}
		fmt.Fprintf(e.stdout, "ytcaption %s\n", version)
		return nil
	case "completion":
		return completion(rest, e)
	case "help", "-h", "--help":
		fmt.Fprintln(e.stdout, usage)
		return nil
	}
	return usagef("unknown command %q (run \"ytcaption help\")", cmd)
}

func newFlags(name, synopsis string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags wherever they stand among the arguments, as people
// type them ("transcribe URL -o out.srt"); "--" ends the flags. It wants
// exactly n positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, n int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) != n {
		fs.Usage()
		return nil, usagef("%s wants %d argument(s), got %d", fs.Name(), n, len(pos))
	}
	return pos, nil
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
	formatNames = []string{"srt", "vtt", "txt", "json", "tsv"}
	languages   = regexp.MustCompile(`^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)$`)
)

func checkFormat(f string) error {
	if !slices.Contains(formatNames, f) {
		return usagef("--format must be one of %s, got %q", strings.Join(formatNames, ", "), f)
	}
	return nil
}

func transcribe(ctx context.Context, args []string, e env) error {
	fs := newFlags("transcribe", "ytcaption transcribe URL [flags]", e)
	format := fs.String("format", "srt", "caption format: srt, vtt, txt, json or tsv")
	language := fs.String("language", "auto", "spoken language: auto or a code such as en")
	source := fs.String("source", "auto", "auto (the video's own captions when they exist), captions or asr")
	task := fs.String("task", "transcribe", "transcribe, or translate: English text of speech in any language")
	prompt := fs.String("prompt", "", "spellings, names or context to guide engines that take one")
	webhook := fs.String("webhook-url", "", "URL the service POSTs the job's end to, signed (default: your account's webhook, if any)")
	out := fs.String("o", "", "write the captions to FILE (default: stdout)")
	noWait := fs.Bool("no-wait", false, "submit, print the job id and return")
	follow := fs.Bool("follow", false, "print transcript segments as they are recognised (on stderr)")
	cancelOnInterrupt := fs.Bool("cancel-on-interrupt", false, "cancel the job on Ctrl-C without asking")
	idemKey := fs.String("idempotency-key", "", "make the submission once per key (default: a new key per command, reused by its retries)")
	asJSON := fs.Bool("json", false, "print the job as JSON on stdout (captions go to -o FILE only)")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	media := pos[0]
	if u, err := url.Parse(media); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%q is not an http(s) URL", media)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if !languages.MatchString(*language) {
		return usagef("--language must be auto or a language code such as en, got %q", *language)
	}
	if !slices.Contains([]string{"auto", "captions", "asr"}, *source) {
		return usagef("--source must be auto, captions or asr, got %q", *source)
	}
	if *task != "transcribe" && *task != "translate" {
		return usagef("--task must be transcribe or translate, got %q", *task)
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	body := map[string]string{"url": media}
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
	key := *idemKey
	if key == "" {
		key = "cli-" + rand.Text()
	}
	var j job
	if _, err := cl.call(ctx, http.MethodPost, "/v1/jobs", body, http.Header{"Idempotency-Key": {key}}, &j); err != nil {
		return err
	}
	if *noWait {
		if *asJSON {
			return writeJSON(e.stdout, j.raw)
		}
		fmt.Fprintln(e.stdout, j.ID)
		return nil
	}

	final, err := followJob(ctx, cl, &j, *follow, *cancelOnInterrupt, e)
	if err != nil {
		return err
	}
	if final.Status == "succeeded" {
		if err := saveTranscript(ctx, cl, final.ID, *format, *out, !*asJSON, e); err != nil {
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

// followJob shows a job's progress until it ends. Ctrl-C stops following and
// cancels the job when the user says so (or cancelOnInterrupt does).
func followJob(ctx context.Context, cl *client, j *job, follow, cancelOnInterrupt bool, e env) (*job, error) {
	p := newProgress(e.stderr, e.stderrTTY, follow)
	p.job(j)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	var wasInterrupted atomic.Bool
	go func() {
		clock := time.NewTicker(time.Second)
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
	final, err := cl.events(fctx, j.ID, p.job, p.segment)
	p.done()
	if !wasInterrupted.Load() {
		return final, err
	}
	if cancelOnInterrupt || ask(e, fmt.Sprintf("Cancel job %s? [y/N] ", j.ID)) {
		var c job
		if _, err := cl.call(ctx, http.MethodDelete, "/v1/jobs/"+j.ID, nil, nil, &c); err != nil {
			return nil, fmt.Errorf("cancel job %s: %w", j.ID, err)
		}
		fmt.Fprintf(e.stderr, "job %s: %s\n", j.ID, c.Status)
	} else {
		fmt.Fprintf(e.stderr, "job %s keeps running; see it with: ytcaption jobs get %s\n", j.ID, j.ID)
	}
	return nil, &interrupted{j.ID}
}

// ask asks a yes/no question on a terminal; elsewhere, and on a second
// Ctrl-C, the answer is no.
func ask(e env, question string) bool {
	if !e.stdinTTY {
		return false
	}
	fmt.Fprint(e.stderr, question)
	answer := make(chan string, 1)
	go func() {
		var s string
		_, _ = fmt.Fscanln(e.stdin, &s)
		answer <- s
	}()
	select {
	case s := <-answer:
		return strings.EqualFold(s, "y") || strings.EqualFold(s, "yes")
	case <-e.interrupts:
		fmt.Fprintln(e.stderr)
		return false
	}
}

// saveTranscript writes a finished job's captions to path, or stdout.
func saveTranscript(ctx context.Context, cl *client, id, format, path string, toStdout bool, e env) error {
	b, err := cl.call(ctx, http.MethodGet, "/v1/jobs/"+id+"/transcript?format="+url.QueryEscape(format), nil, nil, nil)
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
	fmt.Fprintf(e.stderr, "captions written to %s\n", path)
	return nil
}

func jobs(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("jobs wants a subcommand: list, get, cancel or transcript")
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("jobs "+sub, "ytcaption jobs "+sub+" [flags]", e)
	asJSON := fs.Bool("json", false, "print JSON")
	switch sub {
	case "list":
		limit := fs.Int("limit", 20, "how many jobs (1 to 100)")
		if _, err := parseArgs(fs, rest, 0); err != nil {
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
	case "get", "cancel":
		pos, err := parseArgs(fs, rest, 1)
		if err != nil {
			return err
		}
		cl, _, err := connect(e)
		if err != nil {
			return err
		}
		method := http.MethodGet
		if sub == "cancel" {
			method = http.MethodDelete
		}
		var j job
		if _, err := cl.call(ctx, method, "/v1/jobs/"+url.PathEscape(pos[0]), nil, nil, &j); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, j.raw)
		}
		printJob(e.stdout, &j)
		return nil
	case "transcript":
		format := fs.String("format", "srt", "caption format: srt, vtt, txt, json or tsv")
		out := fs.String("o", "", "write the captions to FILE (default: stdout)")
		pos, err := parseArgs(fs, rest, 1)
		if err != nil {
			return err
		}
		if err := checkFormat(*format); err != nil {
			return err
		}
		cl, _, err := connect(e)
		if err != nil {
			return err
		}
		if *asJSON && *out == "" {
			return usagef("jobs transcript --json needs -o FILE: stdout carries the JSON answer")
		}
		if err := saveTranscript(ctx, cl, url.PathEscape(pos[0]), *format, *out, true, e); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, map[string]string{"id": pos[0], "format": *format, "file": *out})
		}
		return nil
	}
	return usagef("unknown jobs subcommand %q: use list, get, cancel or transcript", sub)
}

func printJob(w io.Writer, j *job) {
	fmt.Fprintf(w, "id:        %s\nstatus:    %s\nprogress:  %.0f%%\nurl:       %s\ncreated:   %s\n", j.ID, j.Status, j.Progress*100, j.URL, j.CreatedAt)
	if j.FinishedAt != "" {
		fmt.Fprintf(w, "finished:  %s\n", j.FinishedAt)
	}
	if j.Media != nil {
		fmt.Fprintf(w, "title:     %s\nduration:  %.1f s\n", j.Media.Title, j.Media.Duration)
	}
	if j.Error != nil {
		fmt.Fprintf(w, "error:     %s: %s\n", j.Error.Code, j.Error.Message)
	}
}

func login(ctx context.Context, args []string, e env) error {
	fs := newFlags("login", "ytcaption login [--url URL] [--api-key KEY]   (the key is read from stdin when not given)", e)
	server := fs.String("url", "", "the server's REST URL (default: the saved one, or "+defaultURL+")")
	key := fs.String("api-key", "", "the API key (default: asked for, or read from stdin)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args, 0); err != nil {
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
	// Check the key before keeping it.
	if _, err := newClient(cfg.URL, cfg.APIKey).call(ctx, http.MethodGet, "/v1/jobs?limit=1", nil, nil, nil); err != nil {
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
