package render

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Speakers in every format. A segment (and, where the engine says, a word)
// carries who speaks it; Cues ends a cue where the speaker changes, so no
// cue holds two speakers' words, and each format marks a cue's speaker its
// own way: a WebVTT voice span, an SRT label, a paragraph per turn in text,
// a column in TSV, a field in JSON. A transcript without speakers renders
// exactly as before.

// Named are t's segments with the names its owner gave the speakers: what
// a shared page shows.
func Named(t job.Transcript) []job.Segment { return nameSpeakers(t.Segments, t.SpeakerNames) }

// nameSpeakers applies the names a job's owner gave its speakers (label →
// name), at render time, so a rename reaches every format at once.
func nameSpeakers(segs []job.Segment, names map[string]string) []job.Segment {
	if len(names) == 0 || !hasSpeakers(segs) {
		return segs
	}
	named := func(s string) string {
		if n, ok := names[s]; ok {
			return n
		}
		return s
	}
	out := make([]job.Segment, len(segs))
	for i, s := range segs {
		s.Speaker = named(s.Speaker)
		if len(s.Words) > 0 {
			ws := make([]job.Word, len(s.Words))
			for j, w := range s.Words {
				w.Speaker = named(w.Speaker)
				ws[j] = w
			}
			s.Words = ws
		}
		out[i] = s
	}
	return out
}

// hasSpeakers says whether any segment or word has a speaker.
func hasSpeakers(segs []job.Segment) bool {
	for _, s := range segs {
		if s.Speaker != "" {
			return true
		}
		for _, w := range s.Words {
			if w.Speaker != "" {
				return true
			}
		}
	}
	return false
}

// wordSpeaker is who speaks w: its own label where the engine labels words,
// else its segment's.
func wordSpeaker(s job.Segment, w job.Word) string {
	if w.Speaker != "" {
		return sanitize(w.Speaker)
	}
	return sanitize(s.Speaker)
}

// srtLabel is the label an SRT cue of speaker starts with.
func srtLabel(speaker string) string { return "[" + speaker + "] " }

// labelRoom is how many characters of a cue's first line its speaker's
// label takes in the widest of the formats that print one in the text —
// SBV's ">> name: " (SRT's "[name] " is two narrower) — at most half the
// line, so a long name leaves room for words (its label then runs past the
// line's width by the rest).
func labelRoom(speaker string, n int) int {
	if speaker == "" {
		return 0
	}
	return min(utf8.RuneCountInString(">> "+speaker+": "), n/2)
}

// wrapLabelled is wrap with room kept on the first line for the speaker's
// label.
func wrapLabelled(words []string, n int, speaker string) []string {
	room := labelRoom(speaker, n)
	if room == 0 {
		return wrap(words, n)
	}
	var lines []string
	var line strings.Builder
	width := room // of the current line, the label counted on the first
	for _, w := range words {
		wl := utf8.RuneCountInString(w)
		if line.Len() > 0 && width+1+wl > n {
			lines = append(lines, line.String())
			line.Reset()
			width = 0
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
			width++
		}
		line.WriteString(w)
		width += wl
	}
	if line.Len() > 0 {
		lines = append(lines, line.String())
	}
	return lines
}

// run is a stretch of one speaker's words within a segment.
type run struct {
	speaker        string
	text           string
	startMS, endMS int64
}

// runs splits s where its words' speakers change; a segment whose words
// carry no speaker of their own is one run, its whole text.
func runs(s job.Segment) []run {
	whole := []run{{speaker: sanitize(s.Speaker), text: strings.Join(strings.Fields(sanitize(s.Text)), " "), startMS: s.StartMS, endMS: s.EndMS}}
	split := false
	for _, w := range s.Words {
		split = split || (w.Speaker != "" && w.Speaker != s.Speaker)
	}
	if !split {
		return whole
	}
	var out []run
	for _, w := range s.Words {
		t := strings.Join(strings.Fields(sanitize(w.Text)), " ")
		if t == "" {
			continue
		}
		sp := wordSpeaker(s, w)
		if len(out) > 0 && out[len(out)-1].speaker == sp {
			r := &out[len(out)-1]
			r.text += " " + t
			r.endMS = max(r.endMS, w.EndMS)
			continue
		}
		out = append(out, run{speaker: sp, text: t, startMS: w.StartMS, endMS: w.EndMS})
	}
	if len(out) == 0 {
		return whole
	}
	return out
}

// turns is the plain text of a transcript with speakers: a paragraph per
// speaker turn, "Speaker 1: …", paragraphs apart by a blank line.
func turns(segs []job.Segment) []byte {
	var b bytes.Buffer
	cur, open := "", false
	for _, s := range segs {
		for _, r := range runs(s) {
			if r.text == "" {
				continue
			}
			switch {
			case open && r.speaker == cur:
				b.WriteByte(' ')
			default:
				if open {
					b.WriteString("\n\n")
				}
				if r.speaker != "" {
					b.WriteString(r.speaker + ": ")
				}
				cur, open = r.speaker, true
			}
			b.WriteString(r.text)
		}
	}
	if open {
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// tsvSpeakers is tsv with a speaker column, a row per run of one speaker.
func tsvSpeakers(segs []job.Segment) []byte {
	var b bytes.Buffer
	b.WriteString("start\tend\tspeaker\ttext\n")
	for _, s := range segs {
		for _, r := range runs(s) {
			if r.text != "" {
				fmt.Fprintf(&b, "%d\t%d\t%s\t%s\n", max(r.startMS, 0), max(r.endMS, r.startMS, 0), r.speaker, r.text)
			}
		}
	}
	return b.Bytes()
}
