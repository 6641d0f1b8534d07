package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/doctor"
	"github.com/ytcaption/ytcaption/internal/envflag"
)

// toolFlags are the flags naming the programs and files the download stage
// runs with. serve and doctor share them, so doctor checks exactly what
// serve would run, read from the same YTCAPTION_CORE_* variables.
func toolFlags(fs *flag.FlagSet, cfg *core.Config) {
	fs.StringVar(&cfg.YtDlpBinary, "yt-dlp", "yt-dlp", "yt-dlp binary")
	fs.StringVar(&cfg.JSRuntimes, "js-runtimes", "deno", "JavaScript runtimes a current yt-dlp may use for YouTube, in order: deno, node, bun, quickjs, each optionally NAME:PATH")
	fs.StringVar(&cfg.YtDlpRemoteComponents, "yt-dlp-remote-components", "", "let yt-dlp fetch the EJS scripts it lacks, e.g. ejs:github (its release binaries bundle them)")
	cfg.YtDlpMaxAge = doctor.DefaultMaxAge
	fs.Var((*ageValue)(&cfg.YtDlpMaxAge), "yt-dlp-max-age", "a yt-dlp released longer ago is stale (health, metrics, alert): days such as 60d, or a duration")
	fs.StringVar(&cfg.YtDlpCookies, "yt-dlp-cookies", "", "Netscape cookies file for YouTube (copied per job; optional)")
	fs.StringVar(&cfg.YtDlpProxy, "yt-dlp-proxy", "", "outbound proxy URL for yt-dlp, e.g. socks5://host:1080 (optional)")
	fs.Func("yt-dlp-proxies", "more outbound proxies, comma-separated: downloads take them in turn, and one YouTube refuses rests", func(s string) error {
		cfg.YtDlpProxies = append(cfg.YtDlpProxies, list(s)...)
		return nil
	})
	fs.StringVar(&cfg.YtDlpProxiesFile, "yt-dlp-proxies-file", "", "file of outbound proxies, one a line, re-read when it changes (optional)")
	fs.StringVar(&cfg.YtDlpExtractors, "yt-dlp-extractors", "", "yt-dlp's extractors, comma-separated regular expressions (default: YouTube and the sites ytcaption recognises)")
	fs.BoolVar(&cfg.YtDlpGeneric, "yt-dlp-generic", false, "also read media out of any web page with yt-dlp's generic extractor")
	fs.StringVar(&cfg.FFmpeg, "ffmpeg", "ffmpeg", "ffmpeg binary")
	fs.StringVar(&cfg.FFprobe, "ffprobe", "ffprobe", "ffprobe binary")
}

// list splits a comma-separated flag, dropping blanks.
func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ageValue is a duration flag that also takes days ("60d"): yt-dlp's age is
// counted in days, and 1440h says 60 days badly.
type ageValue time.Duration

func (a *ageValue) String() string {
	d := time.Duration(*a)
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func (a *ageValue) Set(s string) error {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return errors.New("not a number of days such as 60d")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return errors.New("not days such as 60d nor a duration such as 720h")
		}
	}
	if d <= 0 {
		return errors.New("must be positive")
	}
	*a = ageValue(d)
	return nil
}

// errDoctorFailed is doctor's exit status 1: a check failed, and the
// report on stdout says which.
var errDoctorFailed = errors.New("a check failed (FAIL above)")

func doctorCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	var cfg core.Config
	toolFlags(fs, &cfg)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := envflag.ParseCommand(fs, "YTCAPTION_CORE",
		"ytcaption-core doctor: check the tools serve would run with these flags — yt-dlp's version and age, its JavaScript runtime,\n"+
			"ffmpeg, ffprobe, the cookies file and every proxy. One line each, ok, warn or FAIL; exit status 1 when any FAILs.",
		args, getenv, stdout); err != nil {
		return err
	}
	r, err := core.Doctor(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	write := r.WriteText
	if *asJSON {
		write = r.WriteJSON
	}
	if err := write(stdout); err != nil {
		return err
	}
	if r.Failed() {
		return errDoctorFailed
	}
	return nil
}
