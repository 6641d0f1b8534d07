package render

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// dialogue is a conversation: segment speakers, a segment whose words two
// speakers share (whisperX labels words), and a segment nobody was given.
func dialogue() job.Transcript {
	t := transcript(false)
	t.Segments = []job.Segment{
		{Seq: 0, StartMS: 310, EndMS: 4200, Text: "and mister john dashwood had then leisure to consider", Speaker: "Speaker 1"},
		{Seq: 1, StartMS: 4300, EndMS: 6980, Text: "how much there might be prudently in his power", Speaker: "Speaker 1"},
		{Seq: 2, StartMS: 7400, EndMS: 10210, Text: "was he? Not an ill disposed young man", Speaker: "Speaker 2", Words: []job.Word{
			{StartMS: 7400, EndMS: 7700, Text: "was"}, // the segment's speaker's
			{StartMS: 7700, EndMS: 8000, Text: "he?", Speaker: "Speaker 2"},
			{StartMS: 8400, EndMS: 8700, Text: "Not", Speaker: "Speaker 1"},
			{StartMS: 8700, EndMS: 8800, Text: "an", Speaker: "Speaker 1"},
			{StartMS: 8800, EndMS: 9000, Text: "ill", Speaker: "Speaker 1"},
			{StartMS: 9000, EndMS: 9500, Text: "disposed", Speaker: "Speaker 1"},
			{StartMS: 9500, EndMS: 9800, Text: "young", Speaker: "Speaker 1"},
			{StartMS: 9800, EndMS: 10210, Text: "man", Speaker: "Speaker 1"},
		}},
		{Seq: 3, StartMS: 10500, EndMS: 11900, Text: "Tom & Jerry <3 --> cats", Speaker: "Speaker 3"},
		{Seq: 4, StartMS: 12000, EndMS: 12500, Text: "(applause)"},
	}
	return t
}

// TestSpeakersGolden: every format marks who speaks — a WebVTT voice span
// and an SRT label on each cue, a paragraph per turn in text, a column in
// TSV, fields in JSON, ASS's Name field, TTML's ttm:agent, SBV's ">> name:"
// at each turn — and a cue ends where the speaker changes, even inside a
// segment.
func TestSpeakersGolden(t *testing.T) {
	t.Parallel()
	for _, f := range []Format{SRT, VTT, TXT, JSON, TSV, ASS, TTML, SBV} {
		got, err := Render(f, dialogue(), Options{})
		require.NoError(t, err)
		path := filepath.Join("testdata", "speakers."+string(f))
		if *update {
			require.NoError(t, os.WriteFile(path, got, 0o644))
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "run go test -update to create %s", path)
		require.Equal(t, string(want), string(got), string(f))
	}
}

// TestSpeakerNamesReachEveryFormat: a rename is applied when rendering, in
// every format, and a label with no name stays as it was.
func TestSpeakerNamesReachEveryFormat(t *testing.T) {
	t.Parallel()
	tr := dialogue()
	tr.SpeakerNames = map[string]string{"Speaker 1": "John <Dashwood>", "Speaker 2": "Fanny"}
	want := map[Format][]string{
		SRT:  {"[John <Dashwood>] and mister john", "[Fanny] was he?", "[John <Dashwood>] Not an ill", "[Speaker 3] Tom & Jerry"},
		VTT:  {"<v John &lt;Dashwood&gt;>and mister john", "<v Fanny>was he?", "<v Speaker 3>Tom &amp; Jerry"},
		TXT:  {"John <Dashwood>: and mister john", "\n\nFanny: was he?\n\nJohn <Dashwood>: Not an ill disposed young man\n\nSpeaker 3: Tom"},
		TSV:  {"\tFanny\twas he?\n", "\tJohn <Dashwood>\tNot an ill disposed young man\n"},
		JSON: {`"speaker": "Fanny"`, `"speaker": "John \u003cDashwood\u003e"`},
		ASS:  {",Default,John <Dashwood>,0,0,0,,and mister john", ",Default,Fanny,0,0,0,,was he?"},
		TTML: {"John &lt;Dashwood&gt;", "Fanny"},
		SBV:  {">> John <Dashwood>: and mister john", ">> Fanny: was he?"},
	}
	for f, parts := range want {
		out, err := Render(f, tr, Options{})
		require.NoError(t, err)
		for _, p := range parts {
			require.Contains(t, string(out), p, "%s", f)
		}
		require.NotContains(t, string(out), "Speaker 1", "%s: every Speaker 1 is named", f)
		require.NotContains(t, string(out), "Speaker 2", "%s", f)
	}
	require.Equal(t, "Speaker 1", dialogue().Segments[0].Speaker, "rendering leaves the transcript as it was")
}

// TestWithoutSpeakersNothingChanges: TestGolden's files predate speakers;
// here, the same transcript with empty speakers everywhere renders exactly
// as without, and the speaker-only shapes (TSV's column, TXT's turns) stay
// away.
func TestWithoutSpeakersNothingChanges(t *testing.T) {
	t.Parallel()
	for _, words := range []bool{false, true} {
		tr := transcript(words)
		tr.SpeakerNames = map[string]string{"Speaker 1": "Alice"}
		for _, f := range []Format{SRT, VTT, TXT, JSON, TSV, ASS, TTML, SBV} {
			a, err := Render(f, transcript(words), Options{})
			require.NoError(t, err)
			b, err := Render(f, tr, Options{})
			require.NoError(t, err)
			require.Equal(t, string(a), string(b))
			require.NotContains(t, string(b), "speaker")
		}
	}
}

var (
	voiceTag = regexp.MustCompile(`^<v ([^>]*)>`)
	srtTag   = regexp.MustCompile(`^\[([^\]]*)\] `)
)

// speakerOf is the speaker a token of a randomTalk transcript belongs to.
func speakerOf(token string) string {
	k, _, _ := strings.Cut(token, "w")
	return "S" + strings.TrimPrefix(k, "s")
}

// randomTalk is a random conversation whose every word says who speaks it
// ("s2w7" is speaker S2's): speakers change between segments and, where
// words carry their own, within one; some words and segments have none.
func randomTalk(rng *rand.Rand) job.Transcript {
	var segs []job.Segment
	at := int64(0)
	for k := range rng.IntN(10) + 1 {
		at += int64(rng.IntN(2500)) - 300
		segSpeaker := ""
		if rng.IntN(5) > 0 {
			segSpeaker = "S" + strconv.Itoa(rng.IntN(4)+1)
		}
		s := job.Segment{Seq: k, StartMS: at, Speaker: segSpeaker}
		n := rng.IntN(16) + 1
		perWord := rng.IntN(2) == 0
		var texts []string
		for i := range n {
			sp := segSpeaker
			if perWord && rng.IntN(3) == 0 {
				sp = "S" + strconv.Itoa(rng.IntN(4)+1)
			}
			tok := "s" + strings.TrimPrefix(sp, "S") + "w" + strconv.Itoa(i)
			texts = append(texts, tok)
			if perWord {
				ws := at + int64(i)*250
				w := job.Word{StartMS: ws, EndMS: ws + 200 + int64(rng.IntN(100)), Text: tok}
				if sp != segSpeaker {
					w.Speaker = sp
				}
				s.Words = append(s.Words, w)
			}
		}
		s.Text = strings.Join(texts, " ")
		s.EndMS = at + int64(n)*250 + int64(rng.IntN(800))
		at = s.EndMS
		segs = append(segs, s)
	}
	return job.Transcript{Segments: segs}
}

// TestACueNeverHasTwoUnmarkedSpeakers: over many random conversations, in
// SRT, WebVTT, ASS and SBV, every word of a cue is its marked speaker's
// (none marked: words of nobody; SBV marks a turn's first cue), the cues hold every limit as they do without speakers,
// and a first line with its SRT label still fits the line.
func TestACueNeverHasTwoUnmarkedSpeakers(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 400 {
		tr := randomTalk(rng)
		o := Options{MaxLineChars: MinLineChars + rng.IntN(MaxLineCharsLimit-MinLineChars+1), MaxLines: 1 + rng.IntN(MaxLinesLimit)}
		for _, f := range []Format{SRT, VTT} {
			out, err := Render(f, tr, o)
			require.NoError(t, err)
			doc := string(out)
			checkSpeakerCues(t, doc, f, o.withDefaults())
		}
		// ASS names each cue's speaker in its Name field.
		out, err := Render(ASS, tr, o)
		require.NoError(t, err)
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "Dialogue: ") {
				continue
			}
			fields := strings.SplitN(l, ",", 10)
			require.Len(t, fields, 10)
			want := fields[4]
			if want == "" {
				want = "S"
			}
			for _, tok := range strings.Fields(strings.ReplaceAll(fields[9], `\N`, " ")) {
				require.Equal(t, want, speakerOf(tok), "%q", l)
			}
		}
		// SBV marks a turn's first cue: the rest are the last marked speaker's.
		out, err = Render(SBV, tr, o)
		require.NoError(t, err)
		speaker := "S"
		for _, block := range strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n") {
			lines := strings.Split(block, "\n")
			if len(lines) < 2 {
				continue
			}
			if name, rest, ok := strings.Cut(lines[1], ": "); ok && strings.HasPrefix(name, ">> ") {
				require.LessOrEqual(t, utf8.RuneCountInString(lines[1]), o.withDefaults().MaxLineChars, "a labelled first line fits: %q", lines[1])
				speaker, lines[1] = strings.TrimPrefix(name, ">> "), rest
			} else if speakerOf(strings.Fields(lines[1])[0]) == "S" {
				speaker = "S" // an unlabelled stretch after a turn
			}
			for _, l := range lines[1:] {
				for _, tok := range strings.Fields(l) {
					require.Equal(t, speaker, speakerOf(tok), "%q", block)
				}
			}
		}
	}
}

// checkSpeakerCues checks each cue's words against its mark, then the cues
// without their marks under the strict reader.
func checkSpeakerCues(t *testing.T, doc string, f Format, o Options) {
	t.Helper()
	tag := srtTag
	body := doc
	if f == VTT {
		tag = voiceTag
		body = strings.TrimPrefix(doc, "WEBVTT\n\n")
	}
	var stripped []string
	for _, block := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		if block == "" {
			continue
		}
		lines := strings.Split(block, "\n")
		first := 1
		if f == SRT {
			first = 2
		}
		require.Greater(t, len(lines), first, "%q", block)
		speaker := ""
		if m := tag.FindStringSubmatch(lines[first]); m != nil {
			speaker = m[1]
			if f == SRT {
				require.LessOrEqual(t, utf8.RuneCountInString(lines[first]), o.MaxLineChars, "a labelled first line fits: %q", lines[first])
			}
			lines[first] = lines[first][len(m[0]):]
		}
		for _, l := range lines[first:] {
			for _, tok := range strings.Fields(l) {
				if speaker == "" {
					require.Equal(t, "S", speakerOf(tok), "an unmarked cue holds %q, a word of %s: %q", tok, speakerOf(tok), block)
				} else {
					require.Equal(t, speaker, speakerOf(tok), "a cue of %s holds %q: %q", speaker, tok, block)
				}
			}
		}
		stripped = append(stripped, strings.Join(lines, "\n"))
	}
	rest := strings.Join(stripped, "\n\n")
	if rest != "" {
		rest += "\n\n"
	}
	if f == VTT {
		rest = "WEBVTT\n\n" + rest
	}
	checkStrict(t, rest, f, o)
}

// FuzzRenderSpeakers renders arbitrary transcripts with arbitrary speakers
// and names in every format: captions keep their structure with the marks
// taken off, TSV has its four columns, JSON parses, text has no stray line.
func FuzzRenderSpeakers(f *testing.F) {
	f.Add(uint8(0), []byte{40, 3, 40, 200, 3, 1, 40, 5, 40, 9, 40, 80, 2, 0}, "hello world\t<b>Tom & Jerry</b> --> more\nlines", "Speaker 1", "A]l<i>ce\t-->")
	f.Add(uint8(1), []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 5, 1}, "é 日本語 \xff\xfe \u2028", "\n", "x")
	f.Fuzz(func(t *testing.T, format uint8, data []byte, text, label, name string) {
		formats := []Format{SRT, VTT, TXT, JSON, TSV}
		fm := formats[int(format)%len(formats)]
		tr := transcriptFrom(data, strings.Split(text, " "))
		labels := []string{"", label, "Speaker 2"}
		for i := range tr.Segments {
			s := &tr.Segments[i]
			s.Speaker = labels[(i+len(s.Text))%len(labels)]
			for k := range s.Words {
				s.Words[k].Speaker = labels[(i+k)%len(labels)]
			}
		}
		tr.SpeakerNames = map[string]string{label: name}
		out, err := Render(fm, tr, Options{})
		require.NoError(t, err)
		require.True(t, utf8.Valid(out))
		doc := string(out)
		switch fm {
		case SRT, VTT:
			// A name never forges markup, a line break or a timing line:
			// with the marks taken off, the cues are as without speakers.
			var unmarked []string
			for _, l := range strings.Split(doc, "\n") {
				if fm == VTT {
					l = voiceTag.ReplaceAllString(l, "")
				} else {
					l = srtTag.ReplaceAllString(l, "")
				}
				unmarked = append(unmarked, l)
			}
			checkCues(t, strings.Join(unmarked, "\n"), fm)
		case TSV:
			lines := strings.Split(doc, "\n")
			require.Equal(t, "", lines[len(lines)-1])
			cols := len(strings.Split(lines[0], "\t"))
			for _, l := range lines[1 : len(lines)-1] {
				require.Len(t, strings.Split(l, "\t"), cols, "%q", l)
				require.NotContains(t, l, "\r")
			}
		case JSON:
			var v jsonTranscript
			require.NoError(t, json.Unmarshal(out, &v))
			require.Len(t, v.Segments, len(tr.Segments))
		case TXT:
			require.NotContains(t, doc, "\n\n\n")
			require.NotContains(t, doc, "\r")
		}
	})
}

// TestSpeakersTTMLValidatesAgainstIMSC1Schema: TTML with speakers —
// ttm:agent declarations and references, names with XML specials — is
// still a valid IMSC1 Text Profile document.
func TestSpeakersTTMLValidatesAgainstIMSC1Schema(t *testing.T) {
	t.Parallel()
	named := dialogue()
	named.SpeakerNames = map[string]string{"Speaker 1": `John "<Dashwood>" & Sons`, "Speaker 2": "Fänny 日本"}
	docs := map[string][]byte{}
	rng := rand.New(rand.NewPCG(5, 6))
	trs := []job.Transcript{dialogue(), named}
	for range 50 {
		trs = append(trs, randomTalk(rng))
	}
	for i, tr := range trs {
		out, err := Render(TTML, tr, Options{})
		require.NoError(t, err)
		docs["s"+strconv.Itoa(i)+".ttml"] = out
	}
	validateTTML(t, docs)
}

// BenchmarkRenderSpeakers renders an hour of conversation (about 1,200
// segments, words timed) as SRT with and without speakers, to show what the
// labels cost.
func BenchmarkRenderSpeakers(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	var talk job.Transcript
	for len(talk.Segments) < 1200 {
		tr := randomTalk(rng)
		off := int64(len(talk.Segments)) * 3000
		for _, s := range tr.Segments {
			s.Seq, s.StartMS, s.EndMS = len(talk.Segments), s.StartMS+off, s.EndMS+off
			for k := range s.Words {
				s.Words[k].StartMS += off
				s.Words[k].EndMS += off
			}
			talk.Segments = append(talk.Segments, s)
		}
	}
	plain := job.Transcript{Segments: make([]job.Segment, len(talk.Segments))}
	for i, s := range talk.Segments {
		s.Speaker = ""
		s.Words = append([]job.Word(nil), s.Words...)
		for k := range s.Words {
			s.Words[k].Speaker = ""
		}
		plain.Segments[i] = s
	}
	for name, tr := range map[string]job.Transcript{"plain": plain, "speakers": talk} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Render(SRT, tr, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
