package main

import (
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// progress shows a job's way to its end on stderr. On a terminal it is one
// line redrawn in place: the job's short id, the media's title, the stage, a
// bar, the share of audio done, an ETA and the time elapsed. Elsewhere it
// is plain lines — one per stage and per tenth of the audio — with no
// control characters, for logs and CI.
//
// The server reports progress in steps (each a chunk or utterance done), so
// between reports the bar moves on by the rate seen so far in this run of
// the stage: it never goes backwards, never runs more than maxAhead past the
// server's last word, and never shows done before the server says so.
type progress struct {
	w      io.Writer
	tty    bool
	follow bool // print segments as they come
	width  int  // the terminal's columns
	start  time.Time
	now    func() time.Time

	mu      sync.Mutex // events and the clock's ticks both draw
	id      string
	title   string
	status  string
	attempt int
	// This run of the stage: when it was first seen and at what progress,
	// the server's last report, and what the bar showed last.
	since  time.Time
	sinceP float64
	lastAt time.Time
	lastP  float64
	shown  float64
	// line, when set, is what tick redraws instead of the job's line: an
	// upload's bytes, a batch's counts.
	line     func(now time.Time) string
	drawAt   time.Time // when line was last drawn
	sentFrom int64     // an upload's first offset in this run (-1: none yet)
	drawn    bool      // a line is on the terminal
	stage    string    // last stage printed (plain)
	decile   int       // last tenth of progress printed (plain)
}

const (
	// maxAhead is how far the bar may run past the server's last report.
	maxAhead = 0.1
	// barWidth is the bar's cells.
	barWidth = 20
)

func newProgress(w io.Writer, tty, follow bool, width int, now func() time.Time) *progress {
	if width <= 0 {
		width = 80
	}
	return &progress{w: w, tty: tty, follow: follow, width: width, start: now(), now: now, decile: -1, sentFrom: -1}
}

// stageOf names what a job in status waits for, as a user thinks of it.
func stageOf(status string) string {
	switch status {
	case "ready":
		return "waiting for a GPU"
	case "transcribing":
		return "transcribing"
	}
	return status
}

// titleOf is the media's title, or until the server knows it the last
// element of the job's URL ("upload:" jobs: the file's name).
func titleOf(j *job) string {
	if j.Media != nil && j.Media.Title != "" {
		return j.Media.Title
	}
	if name, ok := strings.CutPrefix(j.URL, "upload:"); ok {
		return name
	}
	u, err := url.Parse(j.URL)
	if err != nil {
		return j.URL
	}
	if v := u.Query().Get("v"); v != "" && path.Base(u.Path) == "watch" { // YouTube
		return v
	}
	if base := path.Base(u.Path); base != "/" && base != "." {
		return base
	}
	return u.Host
}

func (p *progress) job(j *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.id, p.title = j.ID, titleOf(j)
	if j.Status != p.status || j.Attempt != p.attempt {
		// A new stage, or a retry starting over: a new run to time.
		p.status, p.attempt = j.Status, j.Attempt
		p.since, p.sinceP, p.shown = now, j.Progress, 0
	}
	p.lastAt, p.lastP = now, j.Progress
	if !p.tty {
		stage := stageOf(j.Status)
		pct := int(j.Progress * 100)
		switch {
		case stage != p.stage:
			p.stage, p.decile = stage, pct/10
			if j.Status == "transcribing" {
				fmt.Fprintf(p.w, "job %s: %s %d%%\n", j.ID, stage, pct)
			} else {
				fmt.Fprintf(p.w, "job %s: %s\n", j.ID, stage)
			}
		case j.Status == "transcribing" && pct/10 > p.decile:
			p.decile = pct / 10
			fmt.Fprintf(p.w, "job %s: %s %d%%\n", j.ID, stage, pct)
		}
		return
	}
	p.draw(now)
}

// estimate is the share done the bar shows at now, and the time left (0:
// not known yet).
func (p *progress) estimate(now time.Time) (float64, time.Duration) {
	if p.status == "succeeded" {
		return 1, 0
	}
	if p.status != "transcribing" {
		return p.lastP, 0
	}
	est := p.lastP
	var rate float64 // share per second
	if ran := p.lastAt.Sub(p.since).Seconds(); ran > 0 && p.lastP > p.sinceP {
		rate = (p.lastP - p.sinceP) / ran
		est += rate * now.Sub(p.lastAt).Seconds()
	}
	est = min(est, p.lastP+maxAhead, 0.99)
	est = max(est, p.shown, p.lastP)
	p.shown = est
	if rate == 0 {
		return est, 0
	}
	return est, time.Duration((1 - est) / rate * float64(time.Second))
}

// tick redraws the terminal line so the bar and clock move while no event
// comes (a long download, a wait for a GPU, a long utterance).
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.tty && p.line != nil:
		p.drawLine(p.now())
	case p.tty && p.status != "":
		p.draw(p.now())
	}
}

func (p *progress) drawLine(now time.Time) {
	fmt.Fprintf(p.w, "\r\x1b[K%s", cut(p.line(now), p.width-1))
	p.drawn, p.drawAt = true, now
}

// bar is done (0 to 1) as barWidth cells.
func bar(done float64) string {
	filled := max(0, min(barWidth, int(done*barWidth)))
	return strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
}

// transfer shows an upload's bytes: on a terminal "name  uploading ████░░
// 42%  12.0/30.0 MiB  0:05", redrawn at most every redrawEvery as the
// bytes go (and by tick); elsewhere a line per tenth.
func (p *progress) transfer(name string, sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := 1.0
	if total > 0 {
		done = float64(sent) / float64(total)
	}
	if !p.tty {
		if d := int(done * 10); p.stage != "uploading" || d > p.decile {
			p.stage, p.decile = "uploading", d
			fmt.Fprintf(p.w, "uploading %s: %d%% (%s of %s MiB)\n", name, int(done*100), mib(sent), mib(total))
		}
		return
	}
	if p.sentFrom < 0 {
		p.sentFrom = sent // a resumed upload's rate counts this run's bytes only
	}
	from := p.sentFrom
	p.line = func(now time.Time) string {
		rate := ""
		if secs := now.Sub(p.start).Seconds(); secs >= 1 && sent > from && sent < total {
			perSec := float64(sent-from) / secs
			left := time.Duration(float64(total-sent) / perSec * float64(time.Second))
			rate = fmt.Sprintf("%s MiB/s  ETA %s  ", mib(int64(perSec)), minutes(left))
		}
		return fmt.Sprintf("%s  uploading %s %3d%%  %s/%s MiB  %s%s", name, bar(done), int(done*100), mib(sent), mib(total), rate, minutes(now.Sub(p.start)))
	}
	if now := p.now(); !p.drawn || sent == total || now.Sub(p.drawAt) >= redrawEvery {
		p.drawLine(now)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

// batch shows a batch's counts: on a terminal "batch 1a2b3c4d  running
// ████░░ 12/40 done  2 failed  0:31"; elsewhere a line when its status or
// the failures change, or another tenth of its jobs is done.
func (p *progress) batch(b *batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := b.Counts
	ended := c.Succeeded + c.Failed + c.Cancelled
	done := 0.0
	if c.Total > 0 {
		done = float64(ended) / float64(c.Total)
	}
	id := b.ID
	if len(id) > 8 {
		id = id[:8]
	}
	failed := ""
	if n := c.Failed + c.Cancelled; n > 0 {
		failed = fmt.Sprintf("  %d failed", n)
	}
	if !p.tty {
		key := fmt.Sprintf("%s %d %s", b.Status, int(done*10), failed)
		if key != p.stage {
			p.stage = key
			fmt.Fprintf(p.w, "batch %s: %s, %d of %d done%s\n", b.ID, b.Status, ended, c.Total, strings.Replace(failed, "  ", ", ", 1))
		}
		return
	}
	p.line = func(now time.Time) string {
		return fmt.Sprintf("batch %s  %s %s %d/%d done%s  %s", id, b.Status, bar(done), ended, c.Total, failed, minutes(now.Sub(p.start)))
	}
	p.drawLine(p.now())
}

// draw writes the line: "1a2b3c4d Title  transcribing ████░░ 42%  ETA 0:31  0:05",
// the title cut to what the terminal's width leaves.
func (p *progress) draw(now time.Time) {
	done, left := p.estimate(now)
	filled := min(barWidth, int(done*barWidth))
	bar := strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
	eta := ""
	if left > 0 {
		eta = "ETA " + minutes(left) + "  "
	}
	tail := fmt.Sprintf("%s %s %3d%%  %s%s", stageOf(p.status), bar, int(done*100), eta, minutes(now.Sub(p.start)))
	id := p.id
	if len(id) > 8 {
		id = id[:8]
	}
	// A line longer than the terminal would wrap, and the next redraw
	// would start on its second row: the title gives way, then the tail.
	title := cut(p.title, p.width-1-utf8.RuneCountInString(id+"   "+tail))
	fmt.Fprintf(p.w, "\r\x1b[K%s", cut(id+" "+title+"  "+tail, p.width-1))
	p.drawn = true
}

// cut shortens s to n runes, marking the cut with "…".
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// minutes formats d as m:ss, or h:mm:ss.
func minutes(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func (p *progress) segment(s segment) {
	if !p.follow {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	text := fmt.Sprintf("[%s → %s] %s", clock(s.StartMS), clock(s.EndMS), strings.TrimSpace(s.Text))
	if !p.tty {
		fmt.Fprintln(p.w, text)
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s\n", text) // above the bar, which is drawn again below
	p.draw(p.now())
}

// done ends the terminal line so what follows starts on its own.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func clock(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	return fmt.Sprintf("%02d:%02d:%02d.%03d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60, ms%1000)
}
