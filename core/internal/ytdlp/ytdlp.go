// Package ytdlp fetches media from YouTube and the other sites yt-dlp has
// extractors for, with yt-dlp, the one downloader that keeps up with them. It
// runs yt-dlp from an argument list (never a shell), with "--" before a
// canonical URL, in a process group of its own, with a private HOME inside
// the job's directory, its every connection (and those of the ffmpeg it
// starts) through an egress proxy that applies the address policy, and turns
// its failures into typed job errors.
package ytdlp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/mediaurl"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/proc"
)

// Config tunes the downloader.
type Config struct {
	Binary string // default "yt-dlp"
	// Extractors is the allowlist for --ies, comma-separated regular
	// expressions yt-dlp matches against whole extractor names; default
	// mediaurl.Extractors(): YouTube and the sites ytcaption recognises.
	Extractors string
	// Generic adds yt-dlp's generic extractor, which reads media out of any
	// web page, and html5, which it hands <video> and <audio> elements to:
	// opt-in, since it makes every page on the web a job source.
	Generic     bool
	MaxFileSize string        // default "500M"
	MaxDuration time.Duration // default 4h; enforced by --break-match-filters
	CookiesFile string        // optional; copied per job because yt-dlp rewrites it
	// Proxy is the outbound proxy yt-dlp's checked connections go through
	// (optional; http://, https:// or socks5://). yt-dlp itself is given
	// the egress proxy, which applies Policy and then uses this one.
	Proxy string
	// Policy is the address policy for every connection yt-dlp and its
	// ffmpeg open: pages and manifests can point anywhere.
	Policy egress.Policy
	// Version is the version Version reported for Binary. The JavaScript
	// options below go only to a yt-dlp that knows them (JSRuntimeSince);
	// an older one would refuse every download.
	Version string
	// JSRuntimes are the JavaScript runtimes yt-dlp may use to solve
	// YouTube's challenges, comma-separated, each a name with an optional
	// path ("deno", "node", "deno:/opt/deno/bin/deno"); default "deno",
	// yt-dlp's own default and recommendation.
	JSRuntimes string
	// RemoteComponents lets yt-dlp fetch the EJS challenge scripts it needs
	// ("ejs:github", "ejs:npm"), comma-separated. Empty when yt-dlp has them:
	// its release binaries bundle them, as does a pip install of yt-dlp[default].
	RemoteComponents string
}

// pathFile receives the downloaded file's path, inside the job dir.
const pathFile = ".filepath"

// Downloader runs yt-dlp.
type Downloader struct{ cfg Config }

// ReadsPages reports whether the generic extractor is allowed: whether a URL
// that turns out to be a web page may be handed to yt-dlp.
func (d *Downloader) ReadsPages() bool { return d.cfg.Generic }

// Route is the way out one download takes: an outbound proxy and a cookies
// file, both optional (core's outbound pool hands these out in turn).
type Route struct {
	Proxy       string
	CookiesFile string
}

// Via returns a Downloader that downloads through r instead of the
// configured proxy and cookies file.
func (d *Downloader) Via(r Route) *Downloader {
	c := *d
	c.cfg.Proxy, c.cfg.CookiesFile = r.Proxy, r.CookiesFile
	return &c
}

// New returns a Downloader.
func New(cfg Config) *Downloader {
	if cfg.Binary == "" {
		cfg.Binary = "yt-dlp"
	}
	if cfg.Extractors == "" {
		cfg.Extractors = mediaurl.Extractors()
	}
	if cfg.Generic {
		cfg.Extractors += ",generic,html5"
	}
	if cfg.MaxFileSize == "" {
		cfg.MaxFileSize = "500M"
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 4 * time.Hour
	}
	if cfg.JSRuntimes == "" {
		cfg.JSRuntimes = "deno"
	}
	return &Downloader{cfg: cfg}
}

// Version asks the binary for its version ("2023.03.04"). YouTube changes
// faster than distributions ship yt-dlp, so operators need to see it.
func Version(ctx context.Context, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", binary, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// common is what every run passes: no user config, the allowed extractors,
// one video that is neither live nor too long, patience with the network,
// files named by video id in dir beside their info JSON, and the route's
// cookies (the per-job copy); run adds the proxy. It omits --no-plugin-dirs because
// Debian's yt-dlp (2023.03.04) does not know it; a private HOME keeps user
// plugins and config out anyway.
func (d *Downloader) common(dir string) []string {
	args := []string{
		"--ignore-config", "--ies", d.cfg.Extractors, "--no-playlist",
		// Two filters, so the refusal names its reason: yt-dlp prints the
		// filter a video failed. Both must pass: a breaking filter is checked
		// before the others. "?" lets media without the field pass: direct
		// files have no duration, and ffprobe checks the real one afterwards.
		"--break-match-filters", "!is_live & live_status!=?is_upcoming",
		"--match-filters", fmt.Sprintf("duration<=?%d", int(d.cfg.MaxDuration.Seconds())),
		"--socket-timeout", "30", "--extractor-retries", "3",
		// yt-dlp's own downloaders, HLS and DASH included: they go through
		// --proxy, the egress proxy, and open no file:// URL. ffmpeg as the
		// HLS downloader would follow the manifest with its own protocol
		// stack.
		"--downloader", "native",
		"-P", dir, "-o", "%(id)s.%(ext)s", "--write-info-json", "--no-progress",
	}
	return append(args, d.session(dir)...)
}

// session is what every run passes about the way in: the route's cookies
// (the per-job copy) and, to a yt-dlp that knows them, exactly the
// configured JavaScript runtimes and remote components.
func (d *Downloader) session(dir string) []string {
	var args []string
	if d.cfg.CookiesFile != "" {
		args = append(args, "--cookies", filepath.Join(dir, "cookies.txt"))
	}
	if KnowsJSRuntimes(d.cfg.Version) {
		// --no-js-runtimes and --no-remote-components first: the lists are
		// exactly the configured ones, not yt-dlp's defaults plus them.
		// --no-plugin-dirs is as old as these (see common's comment).
		args = append(args, "--no-plugin-dirs", "--no-js-runtimes", "--no-remote-components")
		for _, r := range splitList(d.cfg.JSRuntimes) {
			args = append(args, "--js-runtimes", r)
		}
		for _, c := range splitList(d.cfg.RemoteComponents) {
			args = append(args, "--remote-components", c)
		}
	}
	return args
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// formats picks the best audio, else the best format with audio, among
// those fetched over HTTP (plain, DASH, HLS): rtmp, rtsp, mms and websocket
// formats are fetched by programs (rtmpdump, mpv, ffmpeg) that connect
// where a page says with no HTTP proxy in the way.
const formats = "ba[protocol^=http]/ba[protocol^=m3u8]/b[protocol^=http]/b[protocol^=m3u8]"

// Args is the exact argument list for downloading url's audio into dir.
func (d *Downloader) Args(dir, url string) []string {
	return append(d.common(dir),
		"-f", formats, "-R", "5", "--fragment-retries", "5", "--retry-sleep", "http:exp=1:30", "--max-filesize", d.cfg.MaxFileSize,
		// --print would imply --quiet and hide why yt-dlp skipped a video (it
		// exits 0 after "File is larger than max-filesize"): write the path to a file.
		"--print-to-file", "after_move:filepath", filepath.Join(dir, pathFile),
		"--", url)
}

// run runs yt-dlp with args in dir — cookies copied in, a private HOME, its
// own process group, every connection through a fresh egress proxy — and
// classifies a failure. It returns yt-dlp's output.
func (d *Downloader) run(ctx context.Context, dir string, args []string) (string, error) {
	if d.cfg.CookiesFile != "" {
		if err := copyFile(d.cfg.CookiesFile, filepath.Join(dir, "cookies.txt")); err != nil {
			return "", fmt.Errorf("copy cookies: %w", err)
		}
	}
	home := filepath.Join(dir, ".home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("make yt-dlp home: %w", err)
	}
	pc := egress.ProxyConfig{Policy: d.cfg.Policy}
	if d.cfg.Proxy != "" {
		u, err := url.Parse(d.cfg.Proxy)
		if err != nil {
			return "", fmt.Errorf("outbound proxy: %w", err)
		}
		pc.Upstream = u
	}
	px, err := egress.StartProxy(pc)
	if err != nil {
		return "", fmt.Errorf("start the egress proxy: %w", err)
	}
	defer px.Close()
	cmd := proc.Command(ctx, proc.DefaultGrace, d.cfg.Binary, append([]string{"--proxy", px.URL()}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache"), "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	// --proxy covers yt-dlp and the ffmpeg it starts (it passes
	// -http_proxy); the variables cover any other helper that honours them.
	for _, v := range []string{"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"} {
		cmd.Env = append(cmd.Env, v+"="+px.URL())
	}
	output := &tail{max: 8192} // yt-dlp reports on both streams
	cmd.Stdout, cmd.Stderr = output, output
	err = cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("yt-dlp: %w", ctx.Err())
	}
	if refused := px.Refused(); refused != nil {
		// Whatever yt-dlp made of the refusal, the cause is a page or
		// manifest pointing where this server may not go.
		return "", &job.Error{Code: job.CodeSourceForbidden, Message: "the page points at an address this server does not fetch from", Err: refused}
	}
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return "", Classify(code, output.String(), d.cfg.MaxDuration)
	}
	return output.String(), nil
}

// Download fetches url's best audio into dir.
func (d *Downloader) Download(ctx context.Context, dir, url string) (Result, error) {
	output, err := d.run(ctx, dir, d.Args(dir, url))
	if err != nil {
		return Result{}, err
	}
	// Exit 0 is not proof: yt-dlp exits 0 when it skipped the video.
	b, _ := os.ReadFile(filepath.Join(dir, pathFile))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	path := strings.TrimSpace(lines[len(lines)-1])
	if path == "" {
		if e := Classify(0, output, d.cfg.MaxDuration); e.Code != job.CodeDownloadFailed {
			return Result{}, e
		}
		return Result{}, &job.Error{Code: job.CodeDownloadFailed, Message: "yt-dlp finished without downloading anything", Err: errors.New(lastError(output))}
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return Result{}, &job.Error{Code: job.CodeDownloadFailed, Message: "yt-dlp reported a file that is missing or empty"}
	}
	r, _ := readInfo(strings.TrimSuffix(path, filepath.Ext(path)) + ".info.json")
	r.Path = path
	return r, nil
}

func durationOf(seconds float64) time.Duration { return time.Duration(seconds * float64(time.Second)) }

// Classify turns yt-dlp's exit code and stderr into a typed job error. The
// messages are yt-dlp's own (and YouTube's, which it relays).
func Classify(exitCode int, stderr string, maxDuration time.Duration) *job.Error {
	s := strings.ToLower(strings.ReplaceAll(stderr, "’", "'"))
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				return true
			}
		}
		return false
	}
	last := lastError(stderr)
	e := func(code, msg string, retryable bool) *job.Error {
		return &job.Error{Code: code, Message: msg, Retryable: retryable, Err: errors.New(last)}
	}
	switch {
	case has("does not pass filter (duration"):
		return e(job.CodeTooLong, "the video is longer than "+maxDuration.String(), false)
	case exitCode == 101 || has("does not pass filter"):
		return e(job.CodeLiveNotSupported, "the video is a live or upcoming stream: only finished videos can be transcribed", false)
	case has("confirm you're not a bot"):
		return e(job.CodeBotCheck, "YouTube asked this server to sign in to confirm it is not a bot; retrying from the same address will not help", false)
	case has("http error 429", "too many requests", "try again later"):
		return e(job.CodeRateLimited, "YouTube is rate-limiting this server; the job will be retried later", true)
	case has("private video"):
		return e(job.CodePrivateVideo, "the video is private", false)
	case has("confirm your age", "age-restricted", "age restricted", "inappropriate for some users"):
		return e(job.CodeAgeRestricted, "the video is age-restricted and needs a signed-in account", false)
	case has("max-filesize", "file is larger than max"):
		return e(job.CodeMediaTooLarge, "the video's audio is larger than the download limit", false)
	case has("not available in your country", "available in your country", "geo restrict", "geo-restrict", "not available from your location", "blocked in your country"):
		return e(job.CodeGeoBlocked, "the video is not available in the country this server is in", false)
	case has("login required", "requires login", "log in to", "login to", "logged-in", "you need to log in", "only available for registered users", "use --cookies", "account credentials"):
		return e(job.CodeLoginRequired, "the site shows this video only to signed-in accounts", false)
	case has("video unavailable", "this video is unavailable", "this video has been removed"):
		return e(job.CodeVideoUnavailable, "the video is unavailable", false)
	case has("http error 404", "http error 410"):
		return e(job.CodeSourceNotFound, "the media was not found (404)", false)
	case has("http error 403"):
		return e(job.CodeSourceForbidden, "the media server refused the download (403)", true)
	case has("requested format is not available"):
		// No format fetched over HTTP (a stream only over rtmp or rtsp), or
		// YouTube's formats hidden from a yt-dlp without a JavaScript
		// runtime: another try would choose the same.
		return e(job.CodeDownloadFailed, "the site offers no format this server fetches (over HTTP, DASH or HLS); for YouTube, yt-dlp may be too old or lack a JavaScript runtime", false)
	case has("unsupported url", "no suitable extractor"):
		return e(job.CodeInvalidURL, "yt-dlp does not support this URL", false)
	case exitCode == 2:
		// Bad options: our bug or an incompatible yt-dlp, not the user's.
		return e(job.CodeDownloadFailed, "yt-dlp rejected its options: is it too old or too new?", false)
	}
	return e(job.CodeDownloadFailed, "the download failed", true)
}

// CountsAgainstYouTube reports whether a download error says YouTube (or the
// way to it) is failing, for the circuit breaker: network trouble, rate
// limits and bot checks do; a private or removed video does not.
func CountsAgainstYouTube(err error) bool {
	var je *job.Error
	if !errors.As(err, &je) {
		return true
	}
	return je.Retryable || je.Code == job.CodeBotCheck
}

func lastError(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "ERROR:") {
			return strings.TrimSpace(lines[i])
		}
	}
	if n := len(lines); n > 0 && lines[n-1] != "" {
		return strings.TrimSpace(lines[n-1])
	}
	return "yt-dlp exited with an error"
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tail keeps the last max bytes written: yt-dlp's final error lines matter,
// its progress chatter does not.
type tail struct {
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.buf) }
