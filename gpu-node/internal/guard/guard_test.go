package guard

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/wav"
	"github.com/ytcaption/ytcaption/internal/wer"
)

func TestLoopFree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"the cat sat on the mat", "the cat sat on the mat"},
		{"no no no", "no no no"},                       // a word said thrice is speech
		{"no no no no no", "no"},                       // five times is a loop
		{"thank you thank you", "thank you thank you"}, // twice is speech
		{"so thank you thank you thank you for watching", "so thank you for watching"},
		{"I'm going to go I'm going to go I'm going to go I'm going to go home", "I'm going to go home"},
		{"a b c a b c a b c a b c x y x y x y", "a b c x y"},
		{"", ""},
	} {
		toks := strings.Fields(tc.in)
		var got []string
		for _, k := range loopFree(normAll(toks)) {
			got = append(got, toks[k])
		}
		require.Equal(t, tc.want, strings.Join(got, " "), "loopFree(%q)", tc.in)
	}
}

func TestCollapseKeepsWordsInStep(t *testing.T) {
	t.Parallel()
	var words []engine.Word
	for i, w := range strings.Fields("and then, then, then, then, we left") {
		words = append(words, engine.Word{StartMS: int64(i * 100), EndMS: int64(i*100 + 90), Text: w})
	}
	text, ws, ok := collapse("and then, then, then, then, we left", words)
	require.True(t, ok)
	require.Equal(t, "and then, we left", text)
	require.Len(t, ws, 4)
	require.Equal(t, []int64{0, 100, 500, 600}, []int64{ws[0].StartMS, ws[1].StartMS, ws[2].StartMS, ws[3].StartMS})
}

func TestRepeatedSegmentsDropped(t *testing.T) {
	t.Parallel()
	g := New(Options{Repetition: true}, nil)
	seg := func(text string) engine.Segment { return engine.Segment{StartMS: 0, EndMS: 1000, Text: text} }
	var kept []string
	for _, s := range []string{"Yes.", "yes", "Yes.", "We went to the market.", "we went to the market", "We went to the market!", "Then home."} {
		if out, d := g.Apply(seg(s)); d == Kept {
			kept = append(kept, out.Text)
		}
	}
	// "Yes." twice is speech, a third time a loop; a whole sentence again is a loop.
	require.Equal(t, []string{"Yes.", "yes", "We went to the market.", "Then home."}, kept)
	require.Equal(t, Report{RepetitionDropped: 3}, g.Report())
}

func TestGuardsOff(t *testing.T) {
	t.Parallel()
	sp := &Speech{speech: make([]bool, 100)} // 3 s without speech
	g := New(Options{}, sp)
	for range 3 {
		_, d := g.Apply(engine.Segment{StartMS: 0, EndMS: 2000, Text: "thank you thank you thank you thank you"})
		require.Equal(t, Kept, d)
	}
	require.Zero(t, g.Report())
}

// pcm is n samples of 16-bit audio.
func pcm(samples []int16) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, samples)
	return b.Bytes()
}

func TestDetectSpeech(t *testing.T) {
	t.Parallel()
	// 1 s of faint noise (-66 dBFS), 1 s of a loud tone, 1 s of noise.
	rng := rand.New(rand.NewPCG(1, 2))
	var s []int16
	for i := range 3 * wav.SampleRate {
		v := rng.NormFloat64() * 16
		if i >= wav.SampleRate && i < 2*wav.SampleRate {
			v += 8000 * math.Sin(2*math.Pi*220*float64(i)/wav.SampleRate)
		}
		s = append(s, int16(v))
	}
	sp, err := detect(bytes.NewReader(pcm(s)))
	require.NoError(t, err)
	require.False(t, sp.Holds(0, 800), "noise before the tone")
	require.True(t, sp.Holds(1100, 1900), "the tone")
	require.True(t, sp.Holds(1800, 2500), "a segment overlapping the tone's end")
	require.False(t, sp.Holds(2200, 3000), "noise after the tone")
	require.False(t, sp.Holds(3500, 5000), "past the end")
	require.InDelta(t, 1000+2*hangMS, sp.SpeechMS(0, 3000), 2*frameMS)
}

// flite synthesises a sentence with its slt voice, 16 kHz mono, and returns
// the samples.
func flite(t *testing.T, dir, text string) []byte {
	t.Helper()
	path := filepath.Join(dir, "s.wav")
	out, err := exec.Command("flite", "-voice", "slt", "-t", text, "-o", path).CombinedOutput()
	require.NoError(t, err, "flite (scripts/install-deps.sh installs it): %s", out)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	start, n, err := wav.FindData(f)
	require.NoError(t, err)
	b := make([]byte, n)
	_, err = f.ReadAt(b, start)
	require.NoError(t, err)
	return b
}

// TestFliteSpeechWithInventedSegments is the guard on synthetic audio: flite
// says four sentences with five seconds of faint noise between them, and a
// stand-in engine returns the real segments where they are plus what Whisper
// invents — sentences inside the pauses, a phrase looping inside a segment
// and a segment repeated whole. The invented text must go and the real text
// stay.
func TestFliteSpeechWithInventedSegments(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("flite"); err != nil {
		t.Skip("flite not installed (scripts/install-deps.sh test installs it)")
	}
	dir := t.TempDir()
	sentences := []string{
		"the birch canoe slid on the smooth planks",
		"glue the sheet to the dark blue background",
		"it is easy to tell the depth of a well",
		"these days a chicken leg is a rare dish",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	noise := func(ms int) []byte {
		s := make([]int16, ms*wav.SampleRate/1000)
		for i := range s {
			s[i] = int16(rng.NormFloat64() * 20) // about -64 dBFS
		}
		return pcm(s)
	}
	var audio []byte
	var real []engine.Segment
	msOf := func(b []byte) int64 { return int64(len(b)) * 1000 / (wav.SampleRate * wav.BytesPerSample) }
	for _, text := range sentences {
		audio = append(audio, noise(5000)...)
		start := msOf(audio)
		audio = append(audio, flite(t, dir, text)...)
		real = append(real, engine.Segment{StartMS: start, EndMS: msOf(audio), Text: text})
	}
	audio = append(audio, noise(5000)...)
	path := filepath.Join(dir, "audio.wav")
	require.NoError(t, wav.Write(path, bytes.NewReader(audio), int64(len(audio))))

	// The stand-in engine's output, in time order: before each real segment
	// a sentence invented in the pause; the second real segment with a phrase
	// looping at its end; the third repeated whole over its own words; and "thank you" after the
	// last words.
	var out []engine.Segment
	invented := []string{"Thank you for watching.", "Please subscribe to my channel.", "Subtitles by the community.", "I'm sorry."}
	for i, r := range real {
		out = append(out, engine.Segment{StartMS: r.StartMS - 4000, EndMS: r.StartMS - 1500, Text: invented[i]})
		switch i {
		case 1:
			loop := r
			loop.Text = r.Text + strings.Repeat(" the dark blue background", 6)
			out = append(out, loop)
		case 2:
			out = append(out, r, engine.Segment{StartMS: r.StartMS + 500, EndMS: r.EndMS, Text: r.Text})
		default:
			out = append(out, r)
		}
	}
	last := real[len(real)-1]
	out = append(out, engine.Segment{StartMS: last.EndMS + 1000, EndMS: last.EndMS + 4000, Text: "Thank you."})

	run := func(opts Options) ([]string, Report) {
		sp, err := DetectSpeech(path)
		require.NoError(t, err)
		g := New(opts, sp)
		var kept []string
		for _, s := range out {
			if k, d := g.Apply(s); d == Kept {
				kept = append(kept, k.Text)
			}
		}
		return kept, g.Report()
	}
	kept, rep := run(Options{Silence: true, Repetition: true})
	require.Equal(t, sentences, kept, "exactly the real sentences survive")
	require.Equal(t, Report{SilenceDropped: 5, RepetitionDropped: 1, RepetitionTrimmed: 1}, rep)

	refWords := wer.Words(strings.Join(sentences, " "))
	without, _ := run(Options{})
	hyp := func(texts []string) []string { return wer.Words(strings.Join(texts, " ")) }
	t.Logf("flite, %d sentences, 5 s pauses: %d segments in; guards off: %d kept, %d words (WER %.2f); on: %d kept "+
		"(silence dropped %d, repetition dropped %d, trimmed %d), %d words (WER %.2f)",
		len(sentences), len(out), len(without), len(hyp(without)), rate(refWords, hyp(without)),
		len(kept), rep.SilenceDropped, rep.RepetitionDropped, rep.RepetitionTrimmed, len(hyp(kept)), rate(refWords, hyp(kept)))
	require.Zero(t, wer.Errors(refWords, hyp(kept)))
}

func rate(ref, hyp []string) float64 { return float64(wer.Errors(ref, hyp)) / float64(len(ref)) }

// TestQuietSpeechIsKept: speech recorded 35 dB down (about -50 dBFS) over
// digital silence is still speech, and the silence around it still silence.
func TestQuietSpeechIsKept(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("flite"); err != nil {
		t.Skip("flite not installed (scripts/install-deps.sh test installs it)")
	}
	speech := flite(t, t.TempDir(), "it is easy to tell the depth of a well")
	gain := math.Pow(10, -35.0/20)
	for i := 0; i+1 < len(speech); i += 2 {
		v := float64(int16(binary.LittleEndian.Uint16(speech[i:]))) * gain
		binary.LittleEndian.PutUint16(speech[i:], uint16(int16(v)))
	}
	pause := make([]byte, 3*wav.SampleRate*wav.BytesPerSample)
	audio := append(append(append([]byte{}, pause...), speech...), pause...)
	sp, err := detect(bytes.NewReader(audio))
	require.NoError(t, err)
	end := int64(3000 + len(speech)*1000/(wav.SampleRate*wav.BytesPerSample))
	require.True(t, sp.Holds(3000, end), "the quiet sentence")
	require.False(t, sp.Holds(500, 2500), "the silence before it")
	require.False(t, sp.Holds(end+500, end+2500), "the silence after it")
	require.Greater(t, sp.SpeechMS(3000, end), (end-3000)/2, "most of the sentence is speech")
}
