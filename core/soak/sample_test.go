package soak

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/ytcaption/ytcaption/internal/stacktest"
)

// sample is one process measured once.
type sample struct {
	at         time.Duration // since the load began
	proc       string
	rss        float64 // bytes resident (VmRSS)
	goroutines float64 // go_goroutines from its /metrics
	fds        float64 // entries in /proc/PID/fd
	inflight   float64 // the load's users whose jobs had not ended then: the backlog
}

var metricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

var goroutinesLine = regexp.MustCompile(`(?m)^go_goroutines ([0-9.e+]+)$`)

// measure reads a process's resident memory and open files from /proc, then
// its goroutines from its metrics (after counting its files, so the scrape's
// own connection is not among them).
func measure(p *stacktest.Process, at time.Duration) (sample, error) {
	pid := p.Pid()
	s := sample{at: at, proc: p.Name}
	rss, err := readRSS(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.rss, s.fds = rss, float64(len(fds))
	resp, err := metricsClient.Get("http://" + p.Metrics + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, err
	}
	m := goroutinesLine.FindSubmatch(b)
	if m == nil {
		return s, fmt.Errorf("no go_goroutines in %s's metrics", p.Name)
	}
	s.goroutines, err = strconv.ParseFloat(string(m[1]), 64)
	return s, err
}

// readRSS reads VmRSS (in kB) from a /proc/PID/status file.
func readRSS(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS", path)
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// trend fits ys = a + b·x + c·zs by least squares and returns b: the growth
// along x with z held constant. The soak's z is the backlog (jobs in flight):
// goroutines and open files rise and fall with the work in hand — a machine
// shared with others slows the stack for a while, work queues, then drains —
// while a leak grows with the work done, with time. Without variation in z
// it is the plain slope.
func trend(xs, zs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 3 {
		return slope(xs, ys)
	}
	mx, mz, my := mean(xs), mean(zs), mean(ys)
	var sxx, szz, sxz, sxy, szy float64
	for i := range xs {
		dx, dz, dy := xs[i]-mx, zs[i]-mz, ys[i]-my
		sxx += dx * dx
		szz += dz * dz
		sxz += dx * dz
		sxy += dx * dy
		szy += dz * dy
	}
	d := sxx*szz - sxz*sxz
	if szz == 0 || math.Abs(d) < 1e-9*sxx*szz {
		return slope(xs, ys)
	}
	return (szz*sxy - sxz*szy) / d
}

// fit is one process's slopes, per 10 minutes, over the window.
type fit struct {
	proc                             string
	n                                int
	rss, goroutines, fds             float64
	meanRSS, meanGoroutines, meanFDs float64
	inflight, meanInflight           float64 // the load's backlog, the same for every process
	// The slopes without holding the backlog constant, for the report.
	plainRSS, plainGoroutines, plainFDs float64
}

// fitAll fits each process's samples taken at or after from.
func fitAll(samples []sample, procs []string, from time.Duration) []fit {
	var fits []fit
	for _, p := range procs {
		var xs, rss, gs, fds, in []float64
		for _, s := range samples {
			if s.proc == p && s.at >= from {
				xs = append(xs, s.at.Minutes()/10)
				rss, gs, fds, in = append(rss, s.rss), append(gs, s.goroutines), append(fds, s.fds), append(in, s.inflight)
			}
		}
		fits = append(fits, fit{proc: p, n: len(xs), rss: trend(xs, in, rss), goroutines: trend(xs, in, gs), fds: trend(xs, in, fds),
			plainRSS: slope(xs, rss), plainGoroutines: slope(xs, gs), plainFDs: slope(xs, fds),
			meanRSS: mean(rss), meanGoroutines: mean(gs), meanFDs: mean(fds), inflight: slope(xs, in), meanInflight: mean(in)})
	}
	return fits
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func writeCSV(path string, samples []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"seconds", "process", "rss_bytes", "goroutines", "open_fds", "jobs_in_flight"})
	for _, s := range samples {
		_ = w.Write([]string{strconv.FormatFloat(s.at.Seconds(), 'f', 1, 64), s.proc, strconv.FormatFloat(s.rss, 'f', 0, 64),
			strconv.FormatFloat(s.goroutines, 'f', 0, 64), strconv.FormatFloat(s.fds, 'f', 0, 64), strconv.FormatFloat(s.inflight, 'f', 0, 64)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// palette colours the processes, in order.
var palette = []color.RGBA{{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {255, 127, 14, 255}, {148, 103, 189, 255}, {140, 86, 75, 255}}

// plot draws three panels — resident memory, goroutines, open files — one
// line per process against minutes, the fitted window shaded.
func plot(path string, samples []sample, procs []string, from, total time.Duration, title string) error {
	const w, panelH, top, left, right, gap = 1200, 260, 60, 80, 170, 50
	h := top + 3*(panelH+gap)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, left, 25, title, color.Black)
	text(img, left, 45, fmt.Sprintf("shaded: the window the slopes are fitted over (%s..%s); one sample per process every %s",
		from.Round(time.Second), total.Round(time.Second), sampleEvery), color.Gray{90})
	panels := []struct {
		name  string
		value func(sample) float64
		unit  float64
	}{
		{"resident memory (MiB)", func(s sample) float64 { return s.rss }, 1 << 20},
		{"goroutines", func(s sample) float64 { return s.goroutines }, 1},
		{"open file descriptors", func(s sample) float64 { return s.fds }, 1},
	}
	xmax := total.Minutes()
	for _, s := range samples {
		xmax = math.Max(xmax, s.at.Minutes())
	}
	if xmax <= 0 {
		xmax = 1
	}
	plotW := w - left - right
	for pi, pn := range panels {
		y0 := top + pi*(panelH+gap) + 20 // the panel's top
		ymax := 0.0
		for _, s := range samples {
			ymax = math.Max(ymax, pn.value(s)/pn.unit)
		}
		ymax = niceCeil(ymax * 1.1)
		px := func(m float64) int { return left + int(m/xmax*float64(plotW)) }
		py := func(v float64) int { return y0 + panelH - int(v/ymax*float64(panelH)) }
		// The window, the frame, the grid.
		draw.Draw(img, image.Rect(px(from.Minutes()), y0, px(xmax), y0+panelH), &image.Uniform{color.RGBA{235, 240, 250, 255}}, image.Point{}, draw.Src)
		text(img, left, y0-6, pn.name, color.Black)
		for i := 0; i <= 4; i++ {
			v := ymax * float64(i) / 4
			line(img, left, py(v), left+plotW, py(v), color.Gray{220})
			text(img, 8, py(v)+4, strconv.FormatFloat(v, 'g', 4, 64), color.Gray{60})
		}
		step := niceCeil(xmax / 8)
		for m := 0.0; m <= xmax+1e-9; m += step {
			line(img, px(m), y0, px(m), y0+panelH, color.Gray{220})
			text(img, px(m)-8, y0+panelH+14, strconv.FormatFloat(m, 'g', 3, 64)+"m", color.Gray{60})
		}
		rect(img, left, y0, left+plotW, y0+panelH, color.Gray{120})
		for ci, p := range procs {
			c := palette[ci%len(palette)]
			lastX, lastY, first := 0, 0, true
			for _, s := range samples {
				if s.proc != p {
					continue
				}
				x, y := px(s.at.Minutes()), py(pn.value(s)/pn.unit)
				if !first { // two pixels thick
					line(img, lastX, lastY, x, y, c)
					line(img, lastX, lastY+1, x, y+1, c)
				}
				lastX, lastY, first = x, y, false
			}
			if pi == 0 {
				ly := top + 30 + ci*18
				draw.Draw(img, image.Rect(w-right+15, ly-8, w-right+35, ly-4), &image.Uniform{c}, image.Point{}, draw.Src)
				text(img, w-right+40, ly, p, color.Black)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func text(img draw.Image, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// line draws with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func rect(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	line(img, x0, y0, x1, y0, c)
	line(img, x1, y0, x1, y1, c)
	line(img, x1, y1, x0, y1, c)
	line(img, x0, y1, x0, y0, c)
}

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
