// Package render turns a transcript into caption files — SRT, WebVTT, ASS,
// TTML (IMSC1 Text Profile), SBV — plain text, TSV and JSON. Cue shaping is
// shared by every caption format: at most
// MaxLines lines of MaxLineChars characters, at most MaxCueDuration long, in
// order and never overlapping, whatever the engine produced; and, where the
// silence after a cue allows, on screen long enough to read — at least
// MinCueDuration and at most MaxCPS characters a second.
package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Format is an output format.
type Format string

const (
	SRT  Format = "srt"
	VTT  Format = "vtt"
	TXT  Format = "txt"
	JSON Format = "json"
	TSV  Format = "tsv"
	ASS  Format = "ass"
	TTML Format = "ttml"
	SBV  Format = "sbv"
)

// Formats lists every format, in the order error messages and docs name them.
var Formats = []Format{SRT, VTT, ASS, TTML, SBV, TXT, JSON, TSV}

// ParseFormat reads a format name; "" means SRT.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return SRT, nil
	case SRT, VTT, ASS, TTML, SBV, TXT, JSON, TSV:
		return f, nil
	}
	return "", job.Errorf(job.CodeInvalidArgument, "unknown format %q: use srt, vtt, ass, ttml, sbv, txt, json or tsv", s)
}

// ContentType is the MIME type of the format.
func (f Format) ContentType() string {
	switch f {
	case VTT:
		return "text/vtt; charset=utf-8"
	case TXT:
		return "text/plain; charset=utf-8"
	case TSV:
		return "text/tab-separated-values; charset=utf-8"
	case JSON:
		return "application/json"
	case ASS:
		return "text/x-ssa; charset=utf-8"
	case TTML:
		return "application/ttml+xml; charset=utf-8"
	case SBV:
		return "text/plain; charset=utf-8"
	}
	return "application/x-subrip; charset=utf-8"
}

// Options shape cues; zero values take the broadcast defaults.
type Options struct {
	MaxLineChars   int           // default 42
	MaxLines       int           // default 2
	MaxCueDuration time.Duration // default 7 s
	MinCueDuration time.Duration // default 5/6 s (20 frames at 24 fps)
	MaxCPS         float64       // reading speed, characters a second; default 17
	// Karaoke highlights each word as it is spoken, from the word timings:
	// \kf tags in ASS, inline timestamps in WebVTT. Other formats refuse it.
	Karaoke bool
}

// Limits on what a request may ask for: a line narrower than a few words, or
// more lines than fit on a screen, is a mistake.
const (
	MinLineChars, MaxLineCharsLimit = 16, 80
	MaxLinesLimit                   = 3
)

// Validate checks options that came from a request.
func (o Options) Validate() error {
	if o.MaxLineChars != 0 && (o.MaxLineChars < MinLineChars || o.MaxLineChars > MaxLineCharsLimit) {
		return job.Errorf(job.CodeInvalidArgument, "max_line_chars must be from %d to %d, got %d", MinLineChars, MaxLineCharsLimit, o.MaxLineChars)
	}
	if o.MaxLines < 0 || o.MaxLines > MaxLinesLimit {
		return job.Errorf(job.CodeInvalidArgument, "max_lines must be from 1 to %d, got %d", MaxLinesLimit, o.MaxLines)
	}
	return nil
}

// ValidateFor checks options that came from a request for format f.
func (o Options) ValidateFor(f Format) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Karaoke && f != ASS && f != VTT {
		return job.Errorf(job.CodeInvalidArgument, "karaoke is for the ass and vtt formats, not %s", f)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxLineChars <= 0 {
		o.MaxLineChars = 42
	}
	if o.MaxLines <= 0 {
		o.MaxLines = 2
	}
	if o.MaxCueDuration <= 0 {
		o.MaxCueDuration = 7 * time.Second
	}
	if o.MinCueDuration <= 0 {
		o.MinCueDuration = 5 * time.Second / 6
	}
	if o.MaxCPS <= 0 {
		o.MaxCPS = 17
	}
	return o
}

// Render renders t in format f.
func Render(f Format, t job.Transcript, o Options) ([]byte, error) {
	t.Segments = nameSpeakers(t.Segments, t.SpeakerNames)
	switch f {
	case SRT, VTT:
		if o.Karaoke && f == VTT {
			return vttKaraoke(Cues(t.Segments, o)), nil
		}
		return captions(f, Cues(t.Segments, o)), nil
	case ASS:
		return ass(t, Cues(t.Segments, o), o), nil
	case TTML:
		return ttml(t, Cues(t.Segments, o)), nil
	case SBV:
		return sbv(Cues(t.Segments, o)), nil
	case TXT:
		return text(t.Segments), nil
	case TSV:
		return tsv(t.Segments), nil
	case JSON:
		return jsonDoc(t)
	}
	return nil, job.Errorf(job.CodeInvalidArgument, "unknown format %q", f)
}

// Cue is one caption on screen.
type Cue struct {
	Start, End time.Duration
	Lines      []string
	// Speaker is who speaks the whole cue ("" when unknown): Cues ends a
	// cue where the speaker changes, so a cue never holds two speakers'
	// words, and keeps room on its first line for a label.
	Speaker string
	// words are the cue's words in order, as wrapped into Lines, with the
	// engine's timings (before Cues clamped the cue): karaoke reads them.
	words []word
}

// word is a unit of text with its best-known timing.
type word struct {
	text       string
	start, end time.Duration
	speaker    string
}

// Cues shapes segments into valid cues: sorted, clamped to non-negative time,
// split to fit the line and duration limits, and never overlapping.
func Cues(segs []job.Segment, o Options) []Cue {
	o = o.withDefaults()
	segs = append([]job.Segment(nil), segs...)
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].StartMS < segs[j].StartMS })
	var cues []Cue
	for _, s := range segs {
		cues = append(cues, segmentCues(s, o)...)
	}
	// Clamp each end to the next start; drop what no longer has time on screen.
	out := cues[:0]
	for i, c := range cues {
		if i+1 < len(cues) && c.End > cues[i+1].Start {
			c.End = cues[i+1].Start
		}
		if len(out) > 0 && c.Start < out[len(out)-1].End {
			c.Start = out[len(out)-1].End
		}
		if c.End <= c.Start {
			continue
		}
		out = append(out, c)
	}
	readable(out, o)
	return out
}

// readable keeps each cue on screen long enough to read — MinCueDuration, and
// its text at MaxCPS — by extending its end into the silence before the next
// cue: never past the next start, never beyond MaxCueDuration. Speech that is
// faster than that has no silence to take, and stays as timed.
func readable(cues []Cue, o Options) {
	for i := range cues {
		c := &cues[i]
		chars := 0
		for _, l := range c.Lines {
			chars += utf8.RuneCountInString(l) + 1 // a line break reads as a space
		}
		want := max(o.MinCueDuration, time.Duration(float64(chars-1)/o.MaxCPS*float64(time.Second)))
		end := c.Start + min(want, o.MaxCueDuration)
		if i+1 < len(cues) {
			end = min(end, cues[i+1].Start)
		}
		c.End = max(c.End, end)
	}
}

// ms is a time from a transcript, clamped to what a Duration holds: a caption
// file may claim any time, and an overflow would wrap it negative.
func ms(v int64) time.Duration {
	return time.Duration(min(max(v, 0), math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
}

// segmentWords gives each word of s a time: the engine's word timings when it
// has them, else the segment's time shared in proportion to characters.
func segmentWords(s job.Segment) []word {
	var ws []word
	if len(s.Words) > 0 {
		for _, w := range s.Words {
			for _, f := range strings.Fields(sanitize(w.Text)) {
				ws = append(ws, word{text: f, start: ms(w.StartMS), end: ms(w.EndMS), speaker: wordSpeaker(s, w)})
			}
		}
		if len(ws) > 0 {
			return ws
		}
	}
	fields := strings.Fields(sanitize(s.Text))
	if len(fields) == 0 {
		return nil
	}
	ws = share(fields, ms(s.StartMS), ms(s.EndMS))
	for i := range ws {
		ws[i].speaker = sanitize(s.Speaker)
	}
	return ws
}

// share spreads [start, end] over texts in proportion to their length (plus a
// space). Boundaries come from cumulative sums, so the last text ends exactly
// at end and rounding never drifts.
func share(texts []string, start, end time.Duration) []word {
	end = max(end, start)
	total := 0
	for _, f := range texts {
		total += utf8.RuneCountInString(f) + 1
	}
	ws := make([]word, 0, len(texts))
	cum := 0
	for _, f := range texts {
		a := start + (end-start)*time.Duration(cum)/time.Duration(total)
		cum += utf8.RuneCountInString(f) + 1
		b := start + (end-start)*time.Duration(cum)/time.Duration(total)
		ws = append(ws, word{text: f, start: a, end: b})
	}
	return ws
}

// sanitize removes what must never reach a cue: "-->" would end a WebVTT
// timing line early, and line breaks would split a cue.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		// U+FFFE and U+FFFF are not characters, and XML (TTML) cannot hold them.
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || r == 0xfffe || r == 0xffff {
			return -1
		}
		return r
	}, s)
	// After the deletions above, which can join "--" and ">"; and in a loop,
	// since "--->" becomes "-->" after one pass.
	for strings.Contains(s, "-->") {
		s = strings.ReplaceAll(s, "-->", "->")
	}
	return s
}

// segmentCues packs a segment's words greedily into cues of at most MaxLines
// lines and MaxCueDuration.
func segmentCues(s job.Segment, o Options) []Cue {
	ws := segmentWords(s)
	var cues []Cue
	var cur []word
	flush := func() {
		if len(cur) == 0 {
			return
		}
		var texts []string
		for _, w := range cur {
			texts = append(texts, w.text)
		}
		c := Cue{Start: cur[0].start, End: cur[len(cur)-1].end, Lines: wrapLabelled(texts, o.MaxLineChars, cur[0].speaker), words: cur,
			Speaker: cur[0].speaker}
		if c.End < c.Start {
			c.End = c.Start
		}
		cues = append(cues, c)
		cur = nil
	}
	for _, w := range ws {
		for _, pw := range share(hardSplit(w.text, o.MaxLineChars), w.start, w.end) {
			pw.speaker = w.speaker
			if len(cur) > 0 && pw.speaker != cur[0].speaker {
				flush() // another speaker: another cue
			}
			next := append(append([]word(nil), cur...), pw)
			texts := make([]string, len(next))
			for i, x := range next {
				texts[i] = x.text
			}
			if len(cur) > 0 && (len(wrapLabelled(texts, o.MaxLineChars, pw.speaker)) > o.MaxLines || pw.end-cur[0].start > o.MaxCueDuration) {
				flush()
			}
			cur = append(cur, pw)
		}
	}
	flush()
	return cues
}

// hardSplit cuts a word longer than a line into line-sized pieces.
func hardSplit(w string, n int) []string {
	r := []rune(w)
	if len(r) <= n {
		return []string{w}
	}
	var out []string
	for len(r) > n {
		out = append(out, string(r[:n]))
		r = r[n:]
	}
	return append(out, string(r))
}

// wrap fills lines of at most n characters, breaking between words.
func wrap(words []string, n int) []string {
	var lines []string
	var line strings.Builder
	for _, w := range words {
		if line.Len() > 0 && utf8.RuneCountInString(line.String())+1+utf8.RuneCountInString(w) > n {
			lines = append(lines, line.String())
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
	}
	if line.Len() > 0 {
		lines = append(lines, line.String())
	}
	return lines
}

func timestamp(d time.Duration, sep byte) string {
	d = max(d, 0)
	total := d.Milliseconds()
	h, m, s, milli := total/3600000, total/60000%60, total/1000%60, total%1000
	return fmt.Sprintf("%02d:%02d:%02d%c%03d", h, m, s, sep, milli)
}

var vttEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func captions(f Format, cues []Cue) []byte {
	var b bytes.Buffer
	sep := byte(',')
	if f == VTT {
		sep = '.'
		b.WriteString("WEBVTT\n\n")
	}
	for i, c := range cues {
		if f == SRT {
			fmt.Fprintf(&b, "%d\n", i+1)
		}
		fmt.Fprintf(&b, "%s --> %s\n", timestamp(c.Start, sep), timestamp(c.End, sep))
		for i, l := range c.Lines {
			if f == VTT {
				l = vttEscaper.Replace(l)
			}
			if i == 0 && c.Speaker != "" {
				// WebVTT's voice span; in SRT, which has none, a label.
				if f == VTT {
					b.WriteString("<v " + vttEscaper.Replace(c.Speaker) + ">")
				} else {
					b.WriteString(srtLabel(c.Speaker))
				}
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func text(segs []job.Segment) []byte {
	if hasSpeakers(segs) {
		return turns(segs)
	}
	var b bytes.Buffer
	for _, s := range segs {
		if t := strings.Join(strings.Fields(sanitize(s.Text)), " "); t != "" {
			b.WriteString(t)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// tsv is whisper's TSV: a header, then start and end in milliseconds and the
// text of each segment (tabs and line breaks in it become spaces).
func tsv(segs []job.Segment) []byte {
	if hasSpeakers(segs) {
		return tsvSpeakers(segs)
	}
	var b bytes.Buffer
	b.WriteString("start\tend\ttext\n")
	for _, s := range segs {
		if t := strings.Join(strings.Fields(sanitize(s.Text)), " "); t != "" {
			fmt.Fprintf(&b, "%d\t%d\t%s\n", max(s.StartMS, 0), max(s.EndMS, s.StartMS, 0), t)
		}
	}
	return b.Bytes()
}

// The JSON shape follows OpenAI's verbose_json, so clients feel at home.
type jsonWord struct {
	Start       float64 `json:"start"`
	End         float64 `json:"end"`
	Word        string  `json:"word"`
	Probability float32 `json:"probability,omitempty"`
	Speaker     string  `json:"speaker,omitempty"`
}

type jsonSegment struct {
	ID      int        `json:"id"`
	Start   float64    `json:"start"`
	End     float64    `json:"end"`
	Text    string     `json:"text"`
	Speaker string     `json:"speaker,omitempty"`
	Words   []jsonWord `json:"words,omitempty"`
}

type jsonTranscript struct {
	JobID    string        `json:"job_id"`
	Language string        `json:"language"`
	Engine   string        `json:"engine,omitempty"`
	Model    string        `json:"model,omitempty"`
	Duration float64       `json:"duration_seconds"`
	Text     string        `json:"text"`
	Segments []jsonSegment `json:"segments"`
	// What the hallucination guards removed, so a reader can tell; absent
	// when none ran (captions, or guards turned off).
	Guards *jsonGuards `json:"guards,omitempty"`
}

type jsonGuards struct {
	Silence           bool `json:"silence"`
	Repetition        bool `json:"repetition"`
	SilenceDropped    int  `json:"silence_dropped"`
	RepetitionDropped int  `json:"repetition_dropped"`
	RepetitionTrimmed int  `json:"repetition_trimmed"`
}

func secs(v int64) float64 { return math.Round(float64(max(v, 0))) / 1000 }

func jsonDoc(t job.Transcript) ([]byte, error) {
	doc := jsonTranscript{JobID: t.JobID, Language: t.Language, Engine: t.Engine, Model: t.Model,
		Duration: math.Round(t.Duration.Seconds()*1000) / 1000, Segments: []jsonSegment{}}
	if g := t.Guards; g != nil {
		doc.Guards = &jsonGuards{Silence: g.Silence, Repetition: g.Repetition, SilenceDropped: g.SilenceDropped,
			RepetitionDropped: g.RepetitionDropped, RepetitionTrimmed: g.RepetitionTrimmed}
	}
	var all []string
	for i, s := range t.Segments {
		txt := strings.Join(strings.Fields(s.Text), " ")
		js := jsonSegment{ID: i, Start: secs(s.StartMS), End: secs(s.EndMS), Text: txt, Speaker: s.Speaker}
		for _, w := range s.Words {
			js.Words = append(js.Words, jsonWord{Start: secs(w.StartMS), End: secs(w.EndMS), Word: w.Text, Probability: w.Probability, Speaker: w.Speaker})
		}
		doc.Segments = append(doc.Segments, js)
		if txt != "" {
			all = append(all, txt)
		}
	}
	doc.Text = strings.Join(all, " ")
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render json: %w", err)
	}
	return append(b, '\n'), nil
}
