package render

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// cueSpeaker is who speaks in c, "" when unknown. Every format added beside
// SRT and WebVTT (ASS, TTML, SBV, karaoke WebVTT) asks it, so labelling them
// all is this one line.
func cueSpeaker(c Cue) string { return c.Speaker }

// lineWords gives the words of each of c's lines with times that karaoke can
// use: inside the cue (Cues may have moved its start and end), and never
// going back. A cue whose lines no longer match its words (hand-built, or
// relabelled) has its time shared over its lines' words instead.
func lineWords(c Cue) [][]word {
	fields := make([][]string, len(c.Lines))
	n := 0
	for i, l := range c.Lines {
		fields[i] = strings.Fields(l)
		n += len(fields[i])
	}
	ws := c.words
	if len(ws) != n {
		var all []string
		for _, f := range fields {
			all = append(all, f...)
		}
		ws = share(all, c.Start, c.End)
	}
	out := make([][]word, len(c.Lines))
	at, k := c.Start, 0
	for i, f := range fields {
		for _, text := range f {
			w := ws[k]
			k++
			w.text = text
			w.start = min(max(w.start, at), c.End)
			w.end = min(max(w.end, w.start), c.End)
			at = w.start
			out[i] = append(out[i], w)
		}
	}
	return out
}

// vttKaraoke is WebVTT with a cue timestamp (<00:00:01.250>) before each
// word that starts after the cue does, so players that support them
// (browsers' ::cue(:past) and ::cue(:future)) highlight words as spoken. A
// timestamp must lie strictly inside its cue and after the one before it;
// a word whose start cannot be told apart shares the previous word's.
func vttKaraoke(cues []Cue) []byte {
	var b bytes.Buffer
	b.WriteString("WEBVTT\n\n")
	for _, c := range cues {
		fmt.Fprintf(&b, "%s --> %s\n", timestamp(c.Start, '.'), timestamp(c.End, '.'))
		if s := cueSpeaker(c); s != "" {
			fmt.Fprintf(&b, "<v %s>", vttEscaper.Replace(s))
		}
		last := c.Start.Truncate(time.Millisecond)
		for _, line := range lineWords(c) {
			for i, w := range line {
				if i > 0 {
					b.WriteByte(' ')
				}
				if t := w.start.Truncate(time.Millisecond); t > last && t < c.End.Truncate(time.Millisecond) {
					fmt.Fprintf(&b, "<%s>", timestamp(t, '.'))
					last = t
				}
				b.WriteString(vttEscaper.Replace(w.text))
			}
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
