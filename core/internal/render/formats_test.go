package render

import (
	"bytes"
	"encoding/xml"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// parsedCue is a cue read back from any caption format: times in
// milliseconds, and the lines a viewer sees (markup and escapes undone).
type parsedCue struct {
	start, end int64
	lines      []string
}

func clockMS(h, m, s, frac string, fracDigits int) int64 {
	var n [4]int64
	for i, p := range []string{h, m, s, frac} {
		n[i], _ = strconv.ParseInt(p, 10, 64)
	}
	if fracDigits == 2 {
		n[3] *= 10
	}
	return ((n[0]*60+n[1])*60+n[2])*1000 + n[3]
}

var srtTiming = regexp.MustCompile(`^(\d{2,}):([0-5]\d):([0-5]\d)[,.](\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)[,.](\d{3})$`)

// parseBlocks reads SRT, WebVTT (plain or karaoke) and SBV: blocks split by
// a blank line, each a timing line (after SRT's index) and text lines.
func parseBlocks(t *testing.T, doc string, f Format) []parsedCue {
	t.Helper()
	if f == VTT {
		require.True(t, strings.HasPrefix(doc, "WEBVTT\n\n"), "header")
		doc = strings.TrimPrefix(doc, "WEBVTT\n\n")
	}
	if doc == "" {
		return nil
	}
	require.True(t, strings.HasSuffix(doc, "\n\n"), "blank line after the last cue")
	var cues []parsedCue
	for i, block := range strings.Split(strings.TrimSuffix(doc, "\n\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		if f == SRT {
			require.Equal(t, strconv.Itoa(i+1), lines[0])
			lines = lines[1:]
		}
		var c parsedCue
		if f == SBV {
			m := sbvTiming.FindStringSubmatch(lines[0])
			require.NotNil(t, m, "SBV timing %q", lines[0])
			c.start, c.end = clockMS(m[1], m[2], m[3], m[4], 3), clockMS(m[5], m[6], m[7], m[8], 3)
		} else {
			m := srtTiming.FindStringSubmatch(lines[0])
			require.NotNil(t, m, "timing %q", lines[0])
			c.start, c.end = clockMS(m[1], m[2], m[3], m[4], 3), clockMS(m[5], m[6], m[7], m[8], 3)
		}
		for _, l := range lines[1:] {
			if f == VTT {
				l = readKaraokeVTT(t, l, c)
				l = vttUnescaper.Replace(l)
			}
			c.lines = append(c.lines, l)
		}
		cues = append(cues, c)
	}
	return cues
}

var (
	sbvTiming = regexp.MustCompile(`^(\d+):([0-5]\d):([0-5]\d)\.(\d{3}),(\d+):([0-5]\d):([0-5]\d)\.(\d{3})$`)
	vttTag    = regexp.MustCompile(`<(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})>`)
)

// readKaraokeVTT checks a WebVTT cue line's timestamp tags — each strictly
// inside the cue and after the one before, as the WebVTT spec requires — and
// returns the line without them. Any other "<" is markup no cue may carry.
func readKaraokeVTT(t *testing.T, l string, c parsedCue) string {
	t.Helper()
	last := c.start
	for _, m := range vttTag.FindAllStringSubmatch(l, -1) {
		at := clockMS(m[1], m[2], m[3], m[4], 3)
		require.Greater(t, at, last, "timestamp %s in %q", m[0], l)
		require.Less(t, at, c.end, "timestamp %s in %q", m[0], l)
		last = at
	}
	l = vttTag.ReplaceAllString(l, "")
	require.NotContains(t, l, "<", "markup in %q", l)
	return l
}

var (
	assDialogue = regexp.MustCompile(`^Dialogue: 0,(\d+):([0-5]\d):([0-5]\d)\.(\d{2}),(\d+):([0-5]\d):([0-5]\d)\.(\d{2}),Default,([^,]*),0,0,0,,(.*)$`)
	assOverride = regexp.MustCompile(`\{[^}]*\}`)
	assKTag     = regexp.MustCompile(`^\\(k|kf)(\d+)$`)
	assUnescape = strings.NewReplacer("\\\u2060", `\`)
)

// parseASS reads an ASS file as libass does for what matters here: the
// sections, the one style, and each Dialogue's times and text; the text's
// override blocks must be karaoke tags only, whose durations add up to no
// more than the cue.
func parseASS(t *testing.T, doc string, o Options) []parsedCue {
	t.Helper()
	require.True(t, strings.HasPrefix(doc, "[Script Info]\n"), "header")
	require.Contains(t, doc, "\nScriptType: v4.00+\n")
	require.Contains(t, doc, "\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Default,")
	head, events, ok := strings.Cut(doc, "\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")
	require.True(t, ok, "events section")
	require.NotContains(t, head, "Dialogue:")
	if events == "" {
		return nil
	}
	require.True(t, strings.HasSuffix(events, "\n"))
	var cues []parsedCue
	for _, l := range strings.Split(strings.TrimSuffix(events, "\n"), "\n") {
		m := assDialogue.FindStringSubmatch(l)
		require.NotNil(t, m, "Dialogue line %q", l)
		c := parsedCue{start: clockMS(m[1], m[2], m[3], m[4], 2), end: clockMS(m[5], m[6], m[7], m[8], 2)}
		text := m[10]
		var k int64
		for _, tag := range assOverride.FindAllString(text, -1) {
			km := assKTag.FindStringSubmatch(strings.Trim(tag, "{}"))
			require.NotNil(t, km, "override %q in %q", tag, l)
			require.True(t, o.Karaoke, "karaoke tag without karaoke: %q", l)
			n, _ := strconv.ParseInt(km[2], 10, 64)
			k += n * 10
		}
		require.LessOrEqual(t, k, c.end-c.start, "karaoke longer than its cue: %q", l)
		text = assOverride.ReplaceAllString(text, "")
		require.NotContains(t, text, "{")
		require.NotContains(t, text, "}")
		for _, line := range strings.Split(text, `\N`) {
			// A backslash is markup unless the word joiner follows it.
			require.NotRegexp(t, "\\\\[^\u2060]|\\\\$", line)
			c.lines = append(c.lines, assUnescape.Replace(line))
		}
		cues = append(cues, c)
	}
	return cues
}

var ttmlClock = regexp.MustCompile(`^(\d{2,}):([0-5]\d):([0-5]\d)\.(\d{3})$`)

// parseTTML reads a TTML document with encoding/xml: the root, and every p's
// begin, end and lines (text split at br).
func parseTTML(t *testing.T, doc []byte) []parsedCue {
	t.Helper()
	const ns = "http://www.w3.org/ns/ttml"
	d := xml.NewDecoder(bytes.NewReader(doc))
	var cues []parsedCue
	var cur *parsedCue
	var line strings.Builder
	root := true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			if root {
				require.Equal(t, xml.Name{Space: ns, Local: "tt"}, tok.Name)
				root = false
			}
			switch {
			case tok.Name == xml.Name{Space: ns, Local: "p"}:
				require.Nil(t, cur, "nested p")
				cur = &parsedCue{}
				var begin, end string
				for _, a := range tok.Attr {
					switch a.Name.Local {
					case "begin":
						begin = a.Value
					case "end":
						end = a.Value
					}
				}
				mb, me := ttmlClock.FindStringSubmatch(begin), ttmlClock.FindStringSubmatch(end)
				require.NotNil(t, mb, "begin %q", begin)
				require.NotNil(t, me, "end %q", end)
				cur.start, cur.end = clockMS(mb[1], mb[2], mb[3], mb[4], 3), clockMS(me[1], me[2], me[3], me[4], 3)
			case tok.Name == xml.Name{Space: ns, Local: "br"}:
				require.NotNil(t, cur, "br outside p")
				cur.lines = append(cur.lines, line.String())
				line.Reset()
			}
		case xml.CharData:
			if cur != nil {
				line.Write(tok)
			}
		case xml.EndElement:
			if tok.Name == (xml.Name{Space: ns, Local: "p"}) {
				cur.lines = append(cur.lines, line.String())
				line.Reset()
				cues = append(cues, *cur)
				cur = nil
			}
		}
	}
	require.False(t, root, "no tt element")
	return cues
}

// parseAny reads back a caption document of format f.
func parseAny(t *testing.T, f Format, out []byte, o Options) []parsedCue {
	t.Helper()
	switch f {
	case ASS:
		return parseASS(t, string(out), o)
	case TTML:
		return parseTTML(t, out)
	default:
		return parseBlocks(t, string(out), f)
	}
}

// checkParsed holds the cue shaper's promises on cues read back from any
// format: in order, never overlapping, on screen for some time, at most
// MaxLines lines of at most MaxLineChars (a line with no space is one
// hard-split word, which the limit does not bind), no blank line, no "-->".
func checkParsed(t *testing.T, cues []parsedCue, o Options) {
	t.Helper()
	o = o.withDefaults()
	prev := int64(-1)
	for i, c := range cues {
		require.Less(t, c.start, c.end, "cue %d", i+1)
		require.GreaterOrEqual(t, c.start, prev, "cue %d starts before the previous ends", i+1)
		prev = c.end
		require.NotEmpty(t, c.lines, "cue %d has no text", i+1)
		require.LessOrEqual(t, len(c.lines), o.MaxLines, "cue %d", i+1)
		for _, l := range c.lines {
			require.NotEmpty(t, strings.TrimSpace(l), "cue %d", i+1)
			require.NotContains(t, l, "-->", "cue %d", i+1)
			if strings.Contains(l, " ") {
				require.LessOrEqual(t, utf8.RuneCountInString(l), o.MaxLineChars, "cue %d line %q", i+1, l)
			}
		}
	}
}

// checkSameCues holds that format f shows what SRT shows, from the same
// shaper: the same cues, times and lines. ASS counts hundredths, so its
// times are SRT's rounded down, and an SRT cue shorter than that after
// rounding is the one it may leave out; its braces are parentheses.
func checkSameCues(t *testing.T, f Format, got, srt []parsedCue) {
	t.Helper()
	if f != ASS {
		require.Equal(t, srt, got, "%s shows other cues than %s", f, SRT)
		return
	}
	braces := strings.NewReplacer("{", "(", "}", ")")
	k := 0
	for _, s := range srt {
		s.start, s.end = s.start/10*10, s.end/10*10
		if s.end <= s.start {
			continue
		}
		for i := range s.lines {
			s.lines[i] = braces.Replace(s.lines[i])
		}
		require.Less(t, k, len(got), "ASS lacks the cue %+v", s)
		require.Equal(t, s, got[k])
		k++
	}
	require.Len(t, got, k, "ASS has cues SRT has not")
}

// checkFormat checks what the formats beside SRT and plain WebVTT promise,
// for any transcript: each parses back, holds the shaper's limits, and shows
// the very cues SRT shows. It reports whether f was one of them.
func checkFormat(t *testing.T, f Format, tr job.Transcript, o Options, out []byte) bool {
	t.Helper()
	if f != ASS && f != TTML && f != SBV && !(f == VTT && o.Karaoke) {
		return false
	}
	got := parseAny(t, f, out, o)
	checkParsed(t, got, o)
	plain := o
	plain.Karaoke = false
	ref := SRT
	if f == VTT {
		ref = VTT // karaoke adds timestamps, and only them, to WebVTT
	}
	want, err := Render(ref, tr, plain)
	require.NoError(t, err)
	checkSameCues(t, f, got, parseBlocks(t, string(want), ref))
	return true
}

// randomTranscripts are messy transcripts from a fixed seed: overlapping and
// out-of-order times, words with and without timings, markup, braces,
// backslashes, XML specials, scripts of several widths, invalid UTF-8.
func randomTranscripts(n int) []job.Transcript {
	rng := rand.New(rand.NewPCG(21, 3))
	pieces := strings.Fields(`the quick brown fox jumps over a lazy dog while everyone watches {\b1}bold{\b0} \N back\slash ` +
		`<i>Tom</i> & "Jerry" 'quoted' --> é 日本語の字幕 Ünïcödé ]]> <![CDATA[ &amp; &#x0; ` + "\xff\xfe \uFFFE \u200b \x7f\x01 a-very-long-word-that-does-not-fit-on-any-line-whatsoever")
	pieces = append(pieces, "", "en", "de-DE", "not a language")
	out := make([]job.Transcript, n)
	for i := range out {
		data := make([]byte, 16+rng.IntN(600))
		for k := range data {
			data[k] = byte(rng.UintN(256))
		}
		out[i] = transcriptFrom(data, pieces)
	}
	return out
}

// TestFormatsHoldOverRandomTranscripts is the property test over every
// format, with and without karaoke, at several line shapes: each document
// parses back to ordered, non-overlapping cues within the limits, and shows
// what SRT shows.
func TestFormatsHoldOverRandomTranscripts(t *testing.T) {
	t.Parallel()
	shapes := []Options{{}, {MaxLineChars: MinLineChars, MaxLines: 1}, {MaxLineChars: MaxLineCharsLimit, MaxLines: MaxLinesLimit}}
	cues := 0
	for _, tr := range randomTranscripts(300) {
		for _, o := range shapes {
			for _, f := range Formats {
				for _, karaoke := range []bool{false, true} {
					o := o
					o.Karaoke = karaoke
					if o.ValidateFor(f) != nil {
						continue
					}
					out, err := Render(f, tr, o)
					require.NoError(t, err)
					checkOutput(t, f, tr, o, out)
					if f == TTML {
						cues += len(parseTTML(t, out))
					}
				}
			}
		}
	}
	require.Greater(t, cues, 1000, "the random transcripts hardly make cues")
}

// TestGoldenFormats pins each new format's bytes on the shared transcript,
// with and without word timings, and karaoke where it applies.
func TestGoldenFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		f     Format
		words bool
		o     Options
	}{
		{"ass", ASS, false, Options{}},
		{"words.ass", ASS, true, Options{}},
		{"words.karaoke.ass", ASS, true, Options{Karaoke: true}},
		{"karaoke.ass", ASS, false, Options{Karaoke: true}},
		{"ttml", TTML, false, Options{}},
		{"words.ttml", TTML, true, Options{}},
		{"sbv", SBV, false, Options{}},
		{"words.sbv", SBV, true, Options{}},
		{"words.karaoke.vtt", VTT, true, Options{Karaoke: true}},
		{"karaoke.vtt", VTT, false, Options{Karaoke: true}},
	} {
		tr := transcript(tc.words)
		got, err := Render(tc.f, tr, tc.o)
		require.NoError(t, err)
		path := filepath.Join("testdata", tc.name)
		if *update {
			require.NoError(t, os.WriteFile(path, got, 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "run go test -update to create %s", path)
		require.Equal(t, string(want), string(got), tc.name)
		checkOutput(t, tc.f, tr, tc.o, got)
	}
}

func TestNewFormatNames(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Format{"ass": ASS, "TTML": TTML, " sbv ": SBV} {
		got, err := ParseFormat(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseFormat("ssa")
	require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
	for _, f := range Formats {
		require.Contains(t, err.Error(), string(f), "the error names every format")
	}
	require.Equal(t, "text/x-ssa; charset=utf-8", ASS.ContentType())
	require.Equal(t, "application/ttml+xml; charset=utf-8", TTML.ContentType())
	require.Equal(t, "text/plain; charset=utf-8", SBV.ContentType())
}

// TestKaraokeOnlyWhereItMeansSomething: karaoke=true with a format that has
// no word highlighting is refused, not silently ignored.
func TestKaraokeOnlyWhereItMeansSomething(t *testing.T) {
	t.Parallel()
	for _, f := range Formats {
		err := Options{Karaoke: true}.ValidateFor(f)
		if f == ASS || f == VTT {
			require.NoError(t, err, f)
		} else {
			require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err), f)
		}
		require.NoError(t, Options{}.ValidateFor(f), f)
	}
	require.Equal(t, job.CodeInvalidArgument, job.CodeOf(Options{Karaoke: true, MaxLines: 9}.ValidateFor(ASS)), "the other limits still hold")
}

// TestKaraokeFollowsWordTimings: each word's highlight starts when the
// engine says it is spoken — \k for the silence before it, \kf for its
// length — and WebVTT's timestamps are the words' starts.
func TestKaraokeFollowsWordTimings(t *testing.T) {
	t.Parallel()
	tr := job.Transcript{Segments: []job.Segment{{StartMS: 1000, EndMS: 4000, Text: "one two three", Words: []job.Word{
		{StartMS: 1000, EndMS: 1500, Text: "one"}, {StartMS: 2000, EndMS: 2250, Text: "two"}, {StartMS: 2250, EndMS: 4000, Text: "three"}}}}}
	out, err := Render(ASS, tr, Options{Karaoke: true})
	require.NoError(t, err)
	require.Contains(t, string(out), `Dialogue: 0,0:00:01.00,0:00:04.00,Default,,0,0,0,,{\kf50}one {\k50}{\kf25}two {\kf175}three`+"\n")
	out, err = Render(VTT, tr, Options{Karaoke: true})
	require.NoError(t, err)
	require.Equal(t, "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\none <00:00:02.000>two <00:00:02.250>three\n\n", string(out))
}

// TestASSLeavesOutCuesShorterThanAHundredth: ASS counts hundredths of a
// second; a cue that rounds to nothing would be a zero-length Dialogue.
func TestASSLeavesOutCuesShorterThanAHundredth(t *testing.T) {
	t.Parallel()
	tr := job.Transcript{Segments: []job.Segment{{StartMS: 1001, EndMS: 1004, Text: "blink"}, {StartMS: 1004, EndMS: 3000, Text: "stays"}}}
	out, err := Render(ASS, tr, Options{})
	require.NoError(t, err)
	require.NotContains(t, string(out), "blink")
	require.Contains(t, string(out), "Dialogue: 0,0:00:01.00,0:00:03.00,Default,,0,0,0,,stays\n")
	checkOutput(t, ASS, tr, Options{}, out)
}

// TestASSTextIsNeverMarkup: braces and backslashes from an engine cannot
// become override tags or line breaks.
func TestASSTextIsNeverMarkup(t *testing.T) {
	t.Parallel()
	tr := job.Transcript{Segments: []job.Segment{{StartMS: 0, EndMS: 2000, Text: `{\pos(0,0)}moved \N broken\h`}}}
	out, err := Render(ASS, tr, Options{})
	require.NoError(t, err)
	require.Contains(t, string(out), ",,(\\\u2060pos(0,0))moved \\\u2060N broken\\\u2060h\n")
}

// TestTTMLMarksSpeakers: a cue's speaker is a ttm:agent declared once in
// the head and named by each of the speaker's p elements.
func TestTTMLMarksSpeakers(t *testing.T) {
	t.Parallel()
	cues := []Cue{{Start: 0, End: time.Second, Lines: []string{"hi"}}, {Start: time.Second, End: 2 * time.Second, Lines: []string{"yo"}},
		{Start: 2 * time.Second, End: 3 * time.Second, Lines: []string{"bye"}}}
	out := ttmlDoc("en", cues, []string{"Ann & Bo", "Cy", "Ann & Bo"})
	require.Equal(t, 1, strings.Count(string(out), `<ttm:agent xml:id="speaker1" type="person"><ttm:name type="full">Ann &amp; Bo</ttm:name></ttm:agent>`))
	require.Equal(t, 2, strings.Count(string(out), `ttm:agent="speaker1"`))
	require.Equal(t, 1, strings.Count(string(out), `ttm:agent="speaker2"`))
	validateTTML(t, map[string][]byte{"speakers.ttml": out})
}
