package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is the progress line's clock, moved by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

const testJobID = "0c6f3f9e-5d0a-4f7e-9d52-7b1f4c1e2a10"

func jobAt(status string, progress float64) *job {
	return &job{ID: testJobID, Status: status, Progress: progress, URL: "http://media.test/talks/opening%20talk.ogg"}
}

// frame is the last line drawn.
func frame(t *testing.T, out *bytes.Buffer) string {
	t.Helper()
	frames := strings.Split(out.String(), "\r\x1b[K")
	require.Greater(t, len(frames), 1, "nothing drawn: %q", out.String())
	return frames[len(frames)-1]
}

var pctOf = regexp.MustCompile(`(\d+)%`)

func pct(t *testing.T, line string) int {
	t.Helper()
	m := pctOf.FindStringSubmatch(line)
	require.NotNil(t, m, line)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// TestTheBarMovesBetweenReports: the server reports in 20 % steps; between
// them the bar moves on by the rate so far, up to maxAhead past the last
// report, and never back when a report comes in behind it.
func TestTheBarMovesBetweenReports(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clk := &fakeClock{time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	p := newProgress(&out, true, false, 100, clk.now)

	p.job(jobAt("transcribing", 0))
	clk.advance(10 * time.Second)
	p.tick()
	require.Equal(t, 0, pct(t, frame(t, &out)), "no rate is known before the second report")
	require.NotContains(t, frame(t, &out), "ETA")

	p.job(jobAt("transcribing", 0.2)) // 2 % a second
	require.Equal(t, 20, pct(t, frame(t, &out)))
	require.Contains(t, frame(t, &out), "ETA 0:40", "80 % left at 2 % a second")
	clk.advance(2 * time.Second)
	p.tick()
	require.Equal(t, 24, pct(t, frame(t, &out)), "two more seconds at the rate so far")
	require.Contains(t, frame(t, &out), "ETA 0:38")
	clk.advance(20 * time.Second)
	p.tick()
	require.Equal(t, 30, pct(t, frame(t, &out)), "at most maxAhead past the server's word")

	p.job(jobAt("transcribing", 0.25)) // slower than it looked
	require.Equal(t, 30, pct(t, frame(t, &out)), "never backwards")
	clk.advance(time.Second)
	p.tick()
	require.Equal(t, 30, pct(t, frame(t, &out)))

	p.job(jobAt("transcribing", 0.98))
	clk.advance(time.Hour)
	p.tick()
	require.Equal(t, 99, pct(t, frame(t, &out)), "never done before the server says so")
	p.job(jobAt("succeeded", 1))
	require.Equal(t, 100, pct(t, frame(t, &out)))
}

// TestTheBarStartsOverOnARetry: a new attempt transcribes from the start,
// and the bar says so instead of holding the last attempt's share.
func TestTheBarStartsOverOnARetry(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clk := &fakeClock{time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	p := newProgress(&out, true, false, 100, clk.now)
	j := jobAt("transcribing", 0.6)
	j.Attempt = 1
	p.job(j)
	j = jobAt("transcribing", 0)
	j.Attempt = 2
	p.job(j)
	require.Equal(t, 0, pct(t, frame(t, &out)))
}

// TestTheLineShowsIDTitleAndElapsed: the short id, the media's title (the
// URL's last element until the server knows the title) and the clock, cut
// to the terminal's width.
func TestTheLineShowsIDTitleAndElapsed(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clk := &fakeClock{time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	p := newProgress(&out, true, false, 100, clk.now)
	p.job(jobAt("queued", 0))
	require.Equal(t, "0c6f3f9e opening talk.ogg  queued ░░░░░░░░░░░░░░░░░░░░   0%  0:00", frame(t, &out))
	clk.advance(65 * time.Second)
	j := jobAt("ready", 0)
	j.Media = &struct {
		Title    string  `json:"title"`
		Duration float64 `json:"duration_seconds"`
	}{Title: "Sense and Sensibility, chapter 1 — a reading for LibriVox by a volunteer", Duration: 600}
	p.job(j)
	line := frame(t, &out)
	require.Equal(t, "0c6f3f9e Sense and Sensibility, chapter 1 — a r…  waiting for a GPU ░░░░░░░░░░░░░░░░░░░░   0%  1:05", line)
	require.Less(t, len([]rune(line)), 100, "fits the terminal")

	narrow := newProgress(&out, true, false, 60, clk.now)
	narrow.job(j)
	require.Less(t, len([]rune(frame(t, &out))), 60)
}

func TestTitleOf(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"https://www.youtube.com/watch?v=dQw4w9WgXcQ": "dQw4w9WgXcQ",
		"http://media.test/a/b/clip%201.ogg?x=1":      "clip 1.ogg",
		"https://example.com/":                        "example.com",
		"upload:meeting.m4a":                          "meeting.m4a",
	} {
		require.Equal(t, want, titleOf(&job{URL: url}), url)
	}
}

// TestPlainLinesHaveNoControlCharacters: logs and CI get a line per stage
// and per tenth, nothing drawn in place.
func TestPlainLinesHaveNoControlCharacters(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clk := &fakeClock{time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	p := newProgress(&out, false, false, 0, clk.now)
	for _, j := range []*job{jobAt("queued", 0), jobAt("transcribing", 0), jobAt("transcribing", 0.05), jobAt("transcribing", 0.31), jobAt("succeeded", 1)} {
		p.job(j)
		p.tick()
	}
	p.done()
	id := testJobID
	require.Equal(t, "job "+id+": queued\njob "+id+": transcribing 0%\njob "+id+": transcribing 31%\njob "+id+": succeeded\n", out.String())
}

// TestTheUploadBarShowsRateAndETA: after a second, the bytes sent in this
// run (not those a resumed upload had before) give the rate and the time
// left; off a terminal, a line per tenth.
func TestTheUploadBarShowsRateAndETA(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(0, 0)}
	var out bytes.Buffer
	p := newProgress(&out, true, false, 120, clock.now)
	p.transfer("talk.ogg", 4<<20, 10<<20) // resumed at 4 MiB
	require.Equal(t, "talk.ogg  uploading ████████░░░░░░░░░░░░  40%  4.0/10.0 MiB  0:00", frame(t, &out))
	clock.advance(2 * time.Second)
	p.transfer("talk.ogg", 6<<20, 10<<20)
	require.Equal(t, "talk.ogg  uploading ████████████░░░░░░░░  60%  6.0/10.0 MiB  1.0 MiB/s  ETA 0:04  0:02", frame(t, &out))
	p.transfer("talk.ogg", 10<<20, 10<<20)
	require.Equal(t, "talk.ogg  uploading ████████████████████ 100%  10.0/10.0 MiB  0:02", frame(t, &out))

	out.Reset()
	p = newProgress(&out, false, false, 80, clock.now)
	for _, n := range []int64{0, 1, 5 << 20, 5<<20 + 1, 10 << 20} {
		p.transfer("talk.ogg", n, 10<<20)
	}
	require.Equal(t, "uploading talk.ogg: 0% (0.0 of 10.0 MiB)\nuploading talk.ogg: 50% (5.0 of 10.0 MiB)\nuploading talk.ogg: 100% (10.0 of 10.0 MiB)\n", out.String())
}
