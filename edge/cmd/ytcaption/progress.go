package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress shows a job's way to its end on stderr: on a terminal, one line
// redrawn in place (stage, bar, share of audio done, elapsed time); elsewhere,
// plain lines — one per stage and per tenth of the audio — with no control
// characters, for logs and CI.
type progress struct {
	w      io.Writer
	tty    bool
	follow bool // print segments as they come
	start  time.Time
	now    func() time.Time

	mu     sync.Mutex // events and the clock's ticks both draw
	line   string     // what the terminal line shows
	stage  string     // last stage printed (plain)
	decile int        // last tenth of progress printed (plain)
}

func newProgress(w io.Writer, tty, follow bool) *progress {
	return &progress{w: w, tty: tty, follow: follow, start: time.Now(), now: time.Now, decile: -1}
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

func (p *progress) job(j *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stage := stageOf(j.Status)
	pct := int(j.Progress * 100)
	if !p.tty {
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
	const width = 24
	filled := min(width, int(j.Progress*width))
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	p.line = fmt.Sprintf("%-17s %s %3d%%  ", stage, bar, pct)
	p.draw()
}

// tick redraws the terminal line so its clock runs while nothing happens
// (a long download, a wait for a GPU).
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.line != "" {
		p.draw()
	}
}

func (p *progress) draw() {
	fmt.Fprintf(p.w, "\r\x1b[K%s%s", p.line, p.now().Sub(p.start).Truncate(time.Second))
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
	p.draw()
}

// done ends the terminal line so what follows starts on its own.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.line != "" {
		fmt.Fprintln(p.w)
		p.line = ""
	}
}

func clock(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	return fmt.Sprintf("%02d:%02d:%02d.%03d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60, ms%1000)
}
