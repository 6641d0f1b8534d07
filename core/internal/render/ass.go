package render

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// centis is a time in ASS's unit, hundredths of a second, rounded down: two
// times in order stay in order, so cues that did not overlap still do not.
func centis(d time.Duration) int64 { return int64(max(d, 0) / (10 * time.Millisecond)) }

// assTime writes centiseconds as ASS does: 0:00:01.25.
func assTime(cs int64) string {
	return fmt.Sprintf("%d:%02d:%02d.%02d", cs/360000, cs/6000%60, cs/100%60, cs%100)
}

// assEscaper keeps cue text from being read as markup: "{" opens an
// override block (VSFilter has no escape for it, so braces become
// parentheses), and a backslash could start \N, \n or \h (a word joiner
// after it keeps it a plain backslash in libass and VSFilter alike).
var assEscaper = strings.NewReplacer("{", "(", "}", ")", `\`, "\\\u2060")

// assField keeps a style or name field of a Dialogue line to itself: the
// fields are comma-separated.
var assField = strings.NewReplacer(",", " ", "\n", " ", "\r", " ")

// ass is Advanced SubStation Alpha (v4+), styled for a 1920x1080 frame:
// white sans-serif text with a black outline and shadow, bottom centre.
// Lines break where the cue shaper broke them (WrapStyle 2: no wrapping of
// its own), and the font shrinks so that a line of MaxLineChars fits the
// frame. With Karaoke each word fills from white to gold over its spoken
// time (\kf), silences between words wait (\k). ASS counts hundredths of a
// second, so a cue shorter than that after rounding is left out.
func ass(t job.Transcript, cues []Cue, o Options) []byte {
	o = o.withDefaults()
	var b bytes.Buffer
	b.WriteString("[Script Info]\n; Made by ytcaption\nScriptType: v4.00+\n")
	if l := langTag(t.Language); l != "" {
		fmt.Fprintf(&b, "Language: %s\n", l)
	}
	b.WriteString("PlayResX: 1920\nPlayResY: 1080\nWrapStyle: 2\nScaledBorderAndShadow: yes\nYCbCr Matrix: None\n\n")

	// Colours are &HAABBGGRR. Primary is the colour words have once sung,
	// secondary before: only karaoke tells them apart.
	primary, secondary := "&H00FFFFFF", "&H00FFFFFF"
	if o.Karaoke {
		primary = "&H0000D7FF"
	}
	size := min(64, 3456/o.MaxLineChars) // about half an em a character across 1728 pixels
	b.WriteString("[V4+ Styles]\n")
	b.WriteString("Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n")
	fmt.Fprintf(&b, "Style: Default,Arial,%d,%s,%s,&H00000000,&H80000000,0,0,0,0,100,100,0,0,1,3,1,2,96,96,54,1\n\n", size, primary, secondary)

	b.WriteString("[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")
	for _, c := range cues {
		start, end := centis(c.Start), centis(c.End)
		if end <= start {
			continue
		}
		fmt.Fprintf(&b, "Dialogue: 0,%s,%s,Default,%s,0,0,0,,", assTime(start), assTime(end), assField.Replace(cueSpeaker(c)))
		if o.Karaoke {
			assKaraoke(&b, c, start, end)
		} else {
			for i, l := range c.Lines {
				if i > 0 {
					b.WriteString(`\N`)
				}
				b.WriteString(assEscaper.Replace(l))
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// assKaraoke writes a cue's text with a \kf before each word lasting its
// spoken time, and a \k for the silence before a word. Durations come from
// differences of rounded times, so they add up to no more than the cue.
func assKaraoke(b *bytes.Buffer, c Cue, start, end int64) {
	at := start
	for i, line := range lineWords(c) {
		if i > 0 {
			b.WriteString(`\N`)
		}
		for k, w := range line {
			if k > 0 {
				b.WriteByte(' ')
			}
			ws := min(max(centis(w.start), at), end)
			we := min(max(centis(w.end), ws), end)
			if ws > at {
				fmt.Fprintf(b, `{\k%d}`, ws-at)
			}
			fmt.Fprintf(b, `{\kf%d}%s`, we-ws, assEscaper.Replace(w.text))
			at = we
		}
	}
}
