package render

import (
	"encoding/json"
	"flag"
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

var update = flag.Bool("update", false, "rewrite the golden files")

func transcript(withWords bool) job.Transcript {
	segs := []job.Segment{
		{Seq: 0, StartMS: 310, EndMS: 6980, Text: "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them"},
		{Seq: 1, StartMS: 7400, EndMS: 10210, Text: "he was not an ill disposed young man"},
		{Seq: 2, StartMS: 10500, EndMS: 11900, Text: "Tom & Jerry <3 --> cats"},
	}
	if withWords {
		for i := range segs {
			f := strings.Fields(segs[i].Text)
			step := (segs[i].EndMS - segs[i].StartMS) / int64(len(f))
			for k, w := range f {
				s := segs[i].StartMS + int64(k)*step
				segs[i].Words = append(segs[i].Words, job.Word{StartMS: s, EndMS: s + step - 20, Text: w, Probability: 0.9})
			}
		}
	}
	return job.Transcript{JobID: "6f1c2d3e-0000-4000-8000-000000000001", Language: "en", Engine: "sphinx", Duration: 12 * time.Second, Segments: segs}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, words := range []bool{false, true} {
		for _, f := range []Format{SRT, VTT, TXT, JSON, TSV} {
			name := string(f)
			if words {
				name = "words." + name
			}
			got, err := Render(f, transcript(words), Options{})
			require.NoError(t, err)
			path := filepath.Join("testdata", name)
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create %s", path)
			require.Equal(t, string(want), string(got), name)
			if f == SRT || f == VTT {
				checkStrict(t, string(got), f, Options{}.withDefaults())
			}
		}
	}
}

func TestTimestamps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d        time.Duration
		srt, vtt string
	}{
		{0, "00:00:00,000", "00:00:00.000"},
		{59999 * time.Millisecond, "00:00:59,999", "00:00:59.999"},
		{time.Hour, "01:00:00,000", "01:00:00.000"},
		{3*time.Hour + 59*time.Minute + 59*time.Second + 999*time.Millisecond, "03:59:59,999", "03:59:59.999"},
		{-time.Second, "00:00:00,000", "00:00:00.000"},
	} {
		require.Equal(t, tc.srt, timestamp(tc.d, ','))
		require.Equal(t, tc.vtt, timestamp(tc.d, '.'))
	}
}

func TestLineBreaking(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word ", 40)
	cues := Cues([]job.Segment{{StartMS: 0, EndMS: 6000, Text: long}}, Options{})
	require.Greater(t, len(cues), 1, "200 characters do not fit two lines")
	for _, c := range cues {
		require.LessOrEqual(t, len(c.Lines), 2)
		for _, l := range c.Lines {
			require.LessOrEqual(t, utf8.RuneCountInString(l), 42, l)
		}
	}
	giant := strings.Repeat("x", 100)
	cues = Cues([]job.Segment{{StartMS: 0, EndMS: 1000, Text: giant}}, Options{})
	var joined string
	for _, c := range cues {
		for _, l := range c.Lines {
			require.LessOrEqual(t, utf8.RuneCountInString(l), 42)
			joined += l
		}
	}
	require.Equal(t, giant, joined, "a long word is hard-split, not lost")

	cues = Cues([]job.Segment{{StartMS: 0, EndMS: 20000, Text: "a b c d e f g h i j k l m n o p q r s t"}}, Options{})
	for _, c := range cues {
		require.LessOrEqual(t, c.End-c.Start, 7*time.Second)
	}
	cues = Cues([]job.Segment{{StartMS: 0, EndMS: 1000, Text: "one two three"}}, Options{MaxLineChars: 5, MaxLines: 1})
	require.Len(t, cues, 3)
}

func TestVTTEscaping(t *testing.T) {
	t.Parallel()
	out, err := Render(VTT, job.Transcript{Segments: []job.Segment{{StartMS: 0, EndMS: 1000, Text: "a & b <c> --> d"}}}, Options{})
	require.NoError(t, err)
	require.Contains(t, string(out), "a &amp; b &lt;c&gt; -&gt; d")
	require.Equal(t, 1, strings.Count(string(out), "-->"))
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Format{"": SRT, "SRT": SRT, "vtt": VTT, " txt ": TXT, "json": JSON, "tsv": TSV} {
		got, err := ParseFormat(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseFormat("docx")
	require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
}

func TestOptionsFromRequestsAreValidated(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{{}, {MaxLineChars: 16, MaxLines: 1}, {MaxLineChars: 80, MaxLines: 3}} {
		require.NoError(t, o.Validate(), "%+v", o)
	}
	for _, o := range []Options{{MaxLineChars: 15}, {MaxLineChars: 81}, {MaxLineChars: -1}, {MaxLines: 4}, {MaxLines: -1}} {
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(o.Validate()), "%+v", o)
	}
}

func TestJSONShape(t *testing.T) {
	t.Parallel()
	out, err := Render(JSON, transcript(true), Options{})
	require.NoError(t, err)
	var doc struct {
		Language string
		Text     string
		Segments []struct {
			ID         int
			Start, End float64
			Words      []struct {
				Start, End float64
				Word       string
			}
		}
	}
	require.NoError(t, json.Unmarshal(out, &doc))
	require.Equal(t, "en", doc.Language)
	require.Len(t, doc.Segments, 3)
	require.InDelta(t, 0.31, doc.Segments[0].Start, 1e-9)
	require.Equal(t, "and", doc.Segments[0].Words[0].Word)
	require.True(t, strings.HasPrefix(doc.Text, "and mister john"))
}

var (
	timingSRT = regexp.MustCompile(`^(\d{2}):([0-5]\d):([0-5]\d),(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d),(\d{3})$`)
	timingVTT = regexp.MustCompile(`^(\d{2}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d)\.(\d{3})$`)
)

var vttUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// checkStrict parses captions under strict rules and fails on any breach.
func checkStrict(t *testing.T, doc string, f Format, o Options) {
	t.Helper()
	timing := timingSRT
	if f == VTT {
		timing = timingVTT
		require.True(t, strings.HasPrefix(doc, "WEBVTT\n\n"), "header")
		doc = strings.TrimPrefix(doc, "WEBVTT\n\n")
	}
	if strings.TrimSpace(doc) == "" {
		return
	}
	require.True(t, strings.HasSuffix(doc, "\n\n"), "blank line after the last cue")
	prev := -1
	for i, block := range strings.Split(strings.TrimSuffix(doc, "\n\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		if f == SRT {
			require.Equal(t, strconv.Itoa(i+1), lines[0])
			lines = lines[1:]
		}
		m := timing.FindStringSubmatch(lines[0])
		require.NotNil(t, m, "timing %q", lines[0])
		at := func(p []string) int {
			n := make([]int, 4)
			for k := range n {
				n[k], _ = strconv.Atoi(p[k])
			}
			return ((n[0]*60+n[1])*60+n[2])*1000 + n[3]
		}
		start, end := at(m[1:5]), at(m[5:9])
		require.Less(t, start, end, "cue %d", i+1)
		require.GreaterOrEqual(t, start, prev, "cue %d starts before the previous ends", i+1)
		prev = end
		text := lines[1:]
		require.NotEmpty(t, text, "cue %d has no text", i+1)
		require.LessOrEqual(t, len(text), o.MaxLines, "cue %d", i+1)
		for _, l := range text {
			require.NotEmpty(t, strings.TrimSpace(l), "cue %d", i+1)
			require.NotContains(t, l, "-->")
			if f == VTT {
				require.NotContains(t, l, "<")
			}
			shown := l
			if f == VTT {
				shown = vttUnescaper.Replace(l) // the limit is on what viewers see
			}
			if strings.Contains(shown, " ") {
				require.LessOrEqual(t, utf8.RuneCountInString(shown), o.MaxLineChars, "cue %d line %q", i+1, l)
			}
		}
	}
}

// segmentsFrom builds arbitrary, messy segments from fuzz input.
func segmentsFrom(data []byte, text string) []job.Segment {
	var segs []job.Segment
	words := strings.Fields(text)
	for i := 0; i+4 <= len(data); i += 4 {
		start := int64(data[i])*97 - 500 + int64(data[i+1])*13
		end := start + int64(data[i+2])*31 - 800
		s := job.Segment{Seq: len(segs), StartMS: start, EndMS: end}
		if len(words) > 0 {
			n := int(data[i+3])%5 + 1
			for k := 0; k < n; k++ {
				s.Text += words[(i+k)%len(words)] + " "
			}
		} else {
			s.Text = text
		}
		if data[i+3]%2 == 0 {
			s.Words = append(s.Words, job.Word{StartMS: start + 10, EndMS: end, Text: s.Text})
		}
		segs = append(segs, s)
	}
	return segs
}

func fuzzCaptions(f *testing.F, format Format) {
	f.Add([]byte{1, 2, 3, 4, 200, 0, 9, 1}, "hello world <b> & --> more\nlines")
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, "")
	f.Add([]byte{255, 255, 1, 3}, strings.Repeat("x", 90)+" é 日本語")
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		o := Options{MaxLineChars: 42, MaxLines: 2}
		if len(data) >= 2 { // any shape a request may ask for
			o = Options{MaxLineChars: MinLineChars + int(data[0])%(MaxLineCharsLimit-MinLineChars+1), MaxLines: 1 + int(data[1])%MaxLinesLimit}
		}
		out, err := Render(format, job.Transcript{Segments: segmentsFrom(data, text)}, o)
		require.NoError(t, err)
		checkStrict(t, string(out), format, o.withDefaults())
	})
}

func FuzzRenderSRT(f *testing.F) { fuzzCaptions(f, SRT) }
func FuzzRenderVTT(f *testing.F) { fuzzCaptions(f, VTT) }

// TestCuesStayLongEnoughToRead: over many random transcripts, every cue is
// on screen for its reading time (at least 5/6 s, at most 17 characters a
// second, capped at 7 s) unless the next cue starts first; and no cue was
// stretched past the next or beyond 7 s.
func TestCuesStayLongEnoughToRead(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while everyone in the room watches in silence")
	for range 500 {
		var segs []job.Segment
		at := int64(0)
		for k := range rng.IntN(12) + 1 {
			at += int64(rng.IntN(3000)) - 300 // gaps, and the odd overlap
			n := rng.IntN(14) + 1
			var text []string
			for range n {
				text = append(text, words[rng.IntN(len(words))])
			}
			d := int64(rng.IntN(5000) + 50)
			segs = append(segs, job.Segment{Seq: k, StartMS: at, EndMS: at + d, Text: strings.Join(text, " ")})
			at += d
		}
		o := Options{}.withDefaults()
		raw := append([]job.Segment(nil), segs...)
		cues := Cues(raw, o)
		for i, c := range cues {
			chars := utf8.RuneCountInString(strings.Join(c.Lines, " "))
			want := min(max(o.MinCueDuration, time.Duration(float64(chars)/o.MaxCPS*float64(time.Second))), o.MaxCueDuration)
			got := c.End - c.Start
			if i+1 < len(cues) {
				require.LessOrEqual(t, c.End, cues[i+1].Start, "cue %d overlaps the next", i)
				if got < want {
					require.Equal(t, cues[i+1].Start, c.End, "cue %d (%d chars) is %s, under its reading time %s, with silence left", i, chars, got, want)
				}
			} else {
				require.GreaterOrEqual(t, got, want, "the last cue has all the time it wants")
			}
			require.LessOrEqual(t, got, max(o.MaxCueDuration, want), "cue %d", i)
		}
	}
}
