package render

import (
	"encoding/binary"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// fuzzInput reads fuzz bytes as the pieces of a transcript.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	v := in.b[0]
	in.b = in.b[1:]
	return v
}

// time is a plausible time most often, and now and then any int64 at all:
// engines and caption files are not to be trusted with either.
func (in *fuzzInput) time(near int64) int64 {
	switch k := in.byte(); {
	case k < 16 && len(in.b) >= 8:
		v := int64(binary.LittleEndian.Uint64(in.b))
		in.b = in.b[8:]
		return v
	case k < 32:
		return near - int64(in.byte())*40
	default:
		return near + int64(k)*int64(in.byte()+1)
	}
}

// transcriptFrom builds a messy transcript: texts are taken from pieces as
// they are — empty, invalid UTF-8, line breaks, markup — and times from data.
// Pieces are reused, so the text is capped: rendering is linear in it, and
// megabytes of it would only slow the search.
func transcriptFrom(data []byte, pieces []string) job.Transcript {
	in := &fuzzInput{b: data}
	if len(pieces) == 0 {
		pieces = []string{""}
	}
	piece := func() string { return pieces[int(in.byte())%len(pieces)] }
	t := job.Transcript{JobID: piece(), Language: piece(), Engine: piece(), Model: piece()}
	at := int64(0)
	size := 0
	for len(in.b) > 0 && len(t.Segments) < 256 && size < 64<<10 {
		start := in.time(at)
		end := in.time(start)
		s := job.Segment{Seq: len(t.Segments), StartMS: start, EndMS: end}
		n := int(in.byte() % 6)
		var text []string
		for range n {
			text = append(text, piece())
		}
		s.Text = strings.Join(text, " ")
		size += len(s.Text)
		if in.byte()%2 == 0 {
			wat := start
			for _, w := range text {
				ws := in.time(wat)
				we := in.time(ws)
				s.Words = append(s.Words, job.Word{StartMS: ws, EndMS: we, Text: w, Probability: float32(in.byte()) / 255})
				wat = we
			}
		}
		t.Segments = append(t.Segments, s)
		at = end
	}
	return t
}

var (
	hundredHours = regexp.MustCompile(`(^|\n|--> )\d{3,}:`)
	anyTiming    = regexp.MustCompile(`^(\d{2,}):([0-5]\d):([0-5]\d)[,.](\d{3}) --> (\d{2,}):([0-5]\d):([0-5]\d)[,.](\d{3})$`)
)

// checkCues reads captions of any length — WebVTT allows hours of more than
// two digits, and SRT readers take them — and holds the promises: the VTT
// header, SRT indices consecutive from 1, one timing line per cue, cues in
// order and on screen for some time, and cue text with no "-->" (which would
// end a timing line early), no markup in VTT, no blank line.
func checkCues(t *testing.T, doc string, f Format) {
	t.Helper()
	if f == VTT {
		require.True(t, strings.HasPrefix(doc, "WEBVTT\n\n"), "header")
		doc = strings.TrimPrefix(doc, "WEBVTT\n\n")
	}
	if doc == "" {
		return
	}
	require.True(t, strings.HasSuffix(doc, "\n\n"), "blank line after the last cue")
	prev := int64(-1)
	for i, block := range strings.Split(strings.TrimSuffix(doc, "\n\n"), "\n\n") {
		lines := strings.Split(block, "\n")
		if f == SRT {
			require.Equal(t, strconv.Itoa(i+1), lines[0], "SRT index")
			lines = lines[1:]
		}
		m := anyTiming.FindStringSubmatch(lines[0])
		require.NotNil(t, m, "timing %q", lines[0])
		at := func(p []string) int64 {
			var n [4]int64
			for k := range n {
				n[k], _ = strconv.ParseInt(p[k], 10, 64)
			}
			return ((n[0]*60+n[1])*60+n[2])*1000 + n[3]
		}
		start, end := at(m[1:5]), at(m[5:9])
		require.Less(t, start, end, "cue %d", i+1)
		require.GreaterOrEqual(t, start, prev, "cue %d starts before the previous ends", i+1)
		prev = end
		require.Greater(t, len(lines), 1, "cue %d has no text", i+1)
		for _, l := range lines[1:] {
			require.NotEmpty(t, strings.TrimSpace(l), "cue %d", i+1)
			require.NotContains(t, l, "-->", "cue %d", i+1)
			if f == VTT {
				require.NotContains(t, l, "<", "cue %d", i+1)
			}
		}
	}
}

// checkOutput holds what every format promises, for any transcript.
func checkOutput(t *testing.T, f Format, tr job.Transcript, o Options, out []byte) {
	t.Helper()
	require.True(t, utf8.Valid(out), "%s output is not valid UTF-8", f)
	if checkFormat(t, f, tr, o, out) {
		return
	}
	doc := string(out)
	switch f {
	case SRT, VTT:
		checkCues(t, doc, f)
		if !hundredHours.MatchString(doc) {
			// Line limits and reading order under the strict reader, whose
			// timestamps have two-digit hours.
			checkStrict(t, doc, f, o.withDefaults())
		}
	case TXT:
		if doc == "" {
			return
		}
		require.True(t, strings.HasSuffix(doc, "\n"))
		for _, l := range strings.Split(strings.TrimSuffix(doc, "\n"), "\n") {
			require.NotEmpty(t, strings.TrimSpace(l))
			require.NotContains(t, l, "\r")
		}
	case TSV:
		lines := strings.Split(doc, "\n")
		require.Equal(t, "start\tend\ttext", lines[0])
		require.Equal(t, "", lines[len(lines)-1])
		for _, l := range lines[1 : len(lines)-1] {
			cols := strings.Split(l, "\t")
			require.Len(t, cols, 3, "%q", l)
			start, err := strconv.ParseInt(cols[0], 10, 64)
			require.NoError(t, err)
			end, err := strconv.ParseInt(cols[1], 10, 64)
			require.NoError(t, err)
			require.True(t, 0 <= start && start <= end, "%q", l)
			require.NotEmpty(t, cols[2])
			require.NotContains(t, cols[2], "\r")
		}
	case JSON:
		var v jsonTranscript
		require.NoError(t, json.Unmarshal(out, &v))
		require.Len(t, v.Segments, len(tr.Segments))
		for i, s := range v.Segments {
			require.Equal(t, i, s.ID)
			require.GreaterOrEqual(t, s.Start, 0.0)
			require.GreaterOrEqual(t, s.End, 0.0)
		}
	}
}

// FuzzRender renders arbitrary transcripts — any times, any text — in every
// format with any options a request may ask for (karaoke in the formats that
// take it, asked for by the top bit of lines).
func FuzzRender(f *testing.F) {
	formats := Formats
	for i := range formats {
		f.Add(uint8(i), uint8(42), uint8(2), []byte{40, 3, 40, 200, 3, 1, 40, 5, 40, 9, 40, 80, 2, 0}, "hello world\t<b>Tom & Jerry</b> --> more\nlines")
		f.Add(uint8(i), uint8(16), uint8(1), []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 5, 1}, "é 日本語 \xff\xfe \u2028 -\x00-> &amp;")
	}
	f.Add(uint8(1), uint8(80), uint8(3), []byte{20, 9, 20, 9, 1, 0, 20, 1, 20, 1, 20, 2, 20, 3, 20, 200, 5, 0}, strings.Repeat("x", 200)+" a b")
	f.Fuzz(func(t *testing.T, format, lineChars, lines uint8, data []byte, text string) {
		fm := formats[int(format)%len(formats)]
		o := Options{MaxLineChars: MinLineChars + int(lineChars)%(MaxLineCharsLimit-MinLineChars+1), MaxLines: 1 + int(lines&0x7f)%MaxLinesLimit,
			Karaoke: lines&0x80 != 0 && (fm == ASS || fm == VTT)}
		require.NoError(t, o.ValidateFor(fm))
		tr := transcriptFrom(data, strings.Split(text, " "))
		out, err := Render(fm, tr, o)
		require.NoError(t, err)
		checkOutput(t, fm, tr, o, out)
	})
}
