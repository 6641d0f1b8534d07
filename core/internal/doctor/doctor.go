// Package doctor checks the outside programs and files core's download stage
// depends on — yt-dlp (how old it is, whether it knows JavaScript runtimes),
// the JavaScript runtime a current yt-dlp needs for YouTube, ffmpeg and
// ffprobe, the cookies file and the proxy — and says for each what is wrong
// and what to do. `ytcaption-core doctor` prints a Report; core runs the same
// checks at startup and serves their results on /health/ready and /metrics.
//
// YouTube changes faster than distributions ship yt-dlp, and since yt-dlp
// 2025.11.12 YouTube needs an external JavaScript runtime too: these are the
// failures that otherwise show only as downloads failing.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
)

// Status is a check's verdict.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // works, but something should be done
	Fail Status = "FAIL" // a kind of job will fail until it is fixed
)

// Check is one line of a Report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found; Fix, when set, what to do about it.
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Config says which programs and files to check; the fields mirror
// core.Config's and the serve flags'.
type Config struct {
	YtDlp            string        // default "yt-dlp"
	JSRuntimes       string        // yt-dlp's --js-runtimes list; default "deno"
	RemoteComponents string        // yt-dlp's --remote-components list
	MaxAge           time.Duration // yt-dlp older than this is stale; default DefaultMaxAge
	Cookies          string        // optional Netscape cookies file
	// Pool is the outbound pool downloads take proxies from (nil: none).
	Pool    *outbound.Pool
	FFmpeg  string // default "ffmpeg"
	FFprobe string // default "ffprobe"
	// DialTimeout bounds the proxy check's TCP connect; default 3 s.
	DialTimeout time.Duration
	// Now is the clock ages are measured against; default time.Now.
	Now func() time.Time
}

// DefaultMaxAge is how old a yt-dlp may be before it counts as stale: yt-dlp
// releases every few weeks, and a YouTube change breaks old ones within
// months.
const DefaultMaxAge = 60 * 24 * time.Hour

func (c *Config) defaults() {
	if c.YtDlp == "" {
		c.YtDlp = "yt-dlp"
	}
	if c.JSRuntimes == "" {
		c.JSRuntimes = "deno" // yt-dlp's own default, as in ytdlp.New
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.FFprobe == "" {
		c.FFprobe = "ffprobe"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// YtDlp is what core reports about the yt-dlp it runs.
type YtDlp struct {
	Version string `json:"version"` // "" when it did not answer
	// Released is the release date read from Version; zero when unreadable.
	Released time.Time `json:"-"`
	MaxAge   time.Duration
	// JSRuntime is the first configured runtime that works, with its
	// version ("deno 2.9.6"), or "".
	JSRuntime string `json:"js_runtime"`
}

// Age is how long before now yt-dlp was released; ok is false when its
// release date is unknown.
func (y YtDlp) Age(now time.Time) (time.Duration, bool) {
	if y.Released.IsZero() {
		return 0, false
	}
	return now.Sub(y.Released), true
}

// Stale reports whether yt-dlp is older than MaxAge at now. An unknown
// release date is not stale: there is nothing to compare.
func (y YtDlp) Stale(now time.Time) bool {
	age, ok := y.Age(now)
	return ok && age > y.MaxAge
}

// Summary is y as /health/ready shows it at now.
type Summary struct {
	Version   string `json:"version"`
	Released  string `json:"released"` // YYYY-MM-DD, "" when unknown
	AgeDays   int    `json:"age_days"`
	Stale     bool   `json:"stale"`
	JSRuntime string `json:"js_runtime"`
}

// Summary is y as /health/ready shows it at now.
func (y YtDlp) Summary(now time.Time) Summary {
	s := Summary{Version: y.Version, Stale: y.Stale(now), JSRuntime: y.JSRuntime}
	if age, ok := y.Age(now); ok {
		s.Released = y.Released.Format(time.DateOnly)
		s.AgeDays = int(age / (24 * time.Hour))
	}
	return s
}

// Report is the result of Run: one Check per concern, and the facts core
// reports about its tools.
type Report struct {
	Checks  []Check `json:"checks"`
	YtDlp   YtDlp   `json:"-"`
	FFmpeg  string  `json:"-"` // ffmpeg's version, "" when it did not answer
	FFprobe string  `json:"-"`
	now     time.Time
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// Run runs every check. Each runs its program with a timeout, so Run
// returns within seconds whatever the programs do.
func Run(ctx context.Context, cfg Config) Report {
	cfg.defaults()
	r := Report{now: cfg.Now()}
	y, checks := CheckYtDlp(ctx, cfg)
	r.YtDlp = y
	r.Checks = append(r.Checks, checks...)
	var c Check
	r.FFmpeg, c = checkFFmpeg(ctx, "ffmpeg", cfg.FFmpeg)
	r.Checks = append(r.Checks, c)
	r.FFprobe, c = checkFFmpeg(ctx, "ffprobe", cfg.FFprobe)
	r.Checks = append(r.Checks, c, checkCookies(cfg.Cookies, r.now))
	r.Checks = append(r.Checks, checkProxies(ctx, cfg.Pool, cfg.DialTimeout)...)
	return r
}

// CheckYtDlp checks yt-dlp's version, its age and the JavaScript runtime it
// would use. Core repeats it now and then: it costs a few program starts.
func CheckYtDlp(ctx context.Context, cfg Config) (YtDlp, []Check) {
	cfg.defaults()
	now := cfg.Now()
	y := YtDlp{MaxAge: cfg.MaxAge}
	var checks []Check
	v, err := ytdlp.Version(ctx, cfg.YtDlp)
	if err != nil {
		checks = append(checks, Check{Name: "yt-dlp", Status: Fail, Detail: oneLine(err.Error()),
			Fix: "install yt-dlp or point --yt-dlp at it: YouTube jobs fail without it (docs/yt-dlp.md)"})
	} else {
		y.Version = v
		checks = append(checks, ageCheck(&y, now))
	}
	knows := false
	if ytdlp.KnowsJSRuntimes(y.Version) {
		knows = true
		checks = append(checks, Check{Name: "yt-dlp js", Status: OK,
			Detail: fmt.Sprintf("%s knows --js-runtimes (since %s)", y.Version, ytdlp.JSRuntimeSince.Format("2006.01.02")) + ejsNote(cfg.RemoteComponents)})
	} else if y.Version != "" {
		checks = append(checks, Check{Name: "yt-dlp js", Status: Warn,
			Detail: fmt.Sprintf("%s predates JavaScript runtimes (yt-dlp %s): it cannot solve YouTube's current challenges, formats go missing",
				y.Version, ytdlp.JSRuntimeSince.Format("2006.01.02")),
			Fix: "install a current yt-dlp (docs/yt-dlp.md); core passes --js-runtimes only to one that knows it"})
	}
	rt, c := checkJSRuntimes(ctx, cfg.JSRuntimes, knows)
	y.JSRuntime = rt
	return y, append(checks, c)
}

func ageCheck(y *YtDlp, now time.Time) Check {
	released, ok := ytdlp.ReleaseDate(y.Version)
	if !ok {
		return Check{Name: "yt-dlp", Status: Warn, Detail: fmt.Sprintf("version %q names no release date, so its age is unknown", y.Version),
			Fix: "run a yt-dlp release (named by its date) so core can tell when it is out of date"}
	}
	y.Released = released
	days := int(now.Sub(released) / (24 * time.Hour))
	maxDays := int(y.MaxAge / (24 * time.Hour))
	detail := fmt.Sprintf("%s, released %s, %d days ago", y.Version, released.Format(time.DateOnly), days)
	if y.Stale(now) {
		return Check{Name: "yt-dlp", Status: Warn, Detail: detail + fmt.Sprintf(" (more than %d)", maxDays),
			Fix: "YouTube changes faster than that: install a current release (ytcaption-core tools fetch, or pipx upgrade yt-dlp; docs/yt-dlp.md)"}
	}
	return Check{Name: "yt-dlp", Status: OK, Detail: detail + fmt.Sprintf(" (at most %d)", maxDays)}
}

func ejsNote(remote string) string {
	if strings.TrimSpace(remote) == "" {
		return "; EJS scripts: must come with yt-dlp (its release binaries bundle them)"
	}
	return "; EJS scripts: --remote-components " + remote
}

// checkFFmpeg asks ffmpeg or ffprobe for its version: every download is
// probed and normalised with them.
func checkFFmpeg(ctx context.Context, name, binary string) (string, Check) {
	out, err := output(ctx, binary, "-version")
	if err != nil {
		return "", Check{Name: name, Status: Fail, Detail: oneLine(err.Error()),
			Fix: fmt.Sprintf("install ffmpeg (Debian: apt-get install ffmpeg) or point --%s at it: every job needs it", name)}
	}
	// "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) ..."
	f := strings.Fields(firstLine(out))
	if len(f) < 3 || f[1] != "version" {
		return "", Check{Name: name, Status: Warn, Detail: fmt.Sprintf("%s -version printed %q, not a version", binary, firstLine(out))}
	}
	return f[2], Check{Name: name, Status: OK, Detail: f[2]}
}

// output runs binary args with a timeout and returns its standard output.
func output(ctx context.Context, binary string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", binary, strings.Join(args, " "), err)
	}
	return string(out), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// WriteText writes one line per check: its status, its name, what was
// found and what to do.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		line := fmt.Sprintf("%-4s  %-10s  %s", c.Status, c.Name, c.Detail)
		if c.Fix != "" {
			line += " — " + c.Fix
		}
		b.WriteString(line + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report for machines: every check, and the facts
// /health/ready reports under "tools".
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		OK     bool    `json:"ok"`
		Checks []Check `json:"checks"`
		Tools  Tools   `json:"tools"`
	}{!r.Failed(), r.Checks, r.Tools(r.now)})
}

// Tools is what /health/ready reports about core's tools.
type Tools struct {
	YtDlp   Summary `json:"yt_dlp"`
	FFmpeg  string  `json:"ffmpeg"`
	FFprobe string  `json:"ffprobe"`
}

// Tools is the report's facts as /health/ready shows them at now.
func (r Report) Tools(now time.Time) Tools {
	return Tools{YtDlp: r.YtDlp.Summary(now), FFmpeg: r.FFmpeg, FFprobe: r.FFprobe}
}
