// Package guard removes what Whisper-class engines invent rather than hear:
// segments that fall inside silence, and text that loops (the same words over
// and over, within a segment or across consecutive ones). It runs on the
// gpu-node, between the engine and core, so every engine's output passes the
// same guards before it is stored, and it reads the same 16 kHz WAV the
// engine read — core keeps no audio samples at hand when segments arrive.
package guard

import (
	"slices"
	"strings"
	"unicode"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
)

// Options says which guards run. Both are on by default for a job.
type Options struct {
	Silence    bool // drop segments that fall inside silence (Speech must be given)
	Repetition bool // collapse looping n-grams, drop segments that repeat the last one
}

// Report counts what the guards removed from one job's transcript.
type Report struct {
	SilenceDropped    int // segments dropped: no speech under them
	RepetitionDropped int // segments dropped: the previous segment's text again
	RepetitionTrimmed int // segments kept with a looping run of words collapsed to one
}

// Guard filters one job's segments, in the order the engine emits them.
type Guard struct {
	opts   Options
	speech *Speech
	prev   string // speaker and normalised text of the last kept segment
	same   int    // how many segments in a row had that text
	rep    Report
}

// New returns a guard for one job. speech may be nil, which turns the
// silence guard off (no audio map to judge by).
func New(opts Options, speech *Speech) *Guard {
	if speech == nil {
		opts.Silence = false
	}
	return &Guard{opts: opts, speech: speech}
}

// Report says what the guard has removed so far.
func (g *Guard) Report() Report { return g.rep }

// Dropped names the guard that dropped a segment.
type Dropped string

const (
	Kept           Dropped = ""
	DroppedSilence Dropped = "silence"
	DroppedRepeat  Dropped = "repetition"
)

// Apply returns the segment as it should be kept, or which guard dropped it.
// A trimmed segment's text and words lose the same repeats.
func (g *Guard) Apply(s engine.Segment) (engine.Segment, Dropped) {
	if g.opts.Silence && s.EndMS > s.StartMS && !g.speech.Holds(s.StartMS, s.EndMS) {
		g.rep.SilenceDropped++
		return s, DroppedSilence
	}
	if !g.opts.Repetition {
		return s, Kept
	}
	if t, ws, ok := collapse(s.Text, s.Words); ok {
		s.Text, s.Words = t, ws
		g.rep.RepetitionTrimmed++
	}
	norm := strings.Join(normWords(s.Text), " ")
	// Another speaker saying the same is dialogue ("Yes." "Yes."), not the
	// engine looping: a repeat is the same speaker's.
	key := s.Speaker + "\x00" + norm
	if norm != "" && key == g.prev {
		g.same++
		// A sentence said twice in a row happens; three words or more said
		// again as a whole segment, or anything a third time, is a loop.
		if len(strings.Fields(norm)) >= 3 || g.same >= 2 {
			g.rep.RepetitionDropped++
			return s, DroppedRepeat
		}
		return s, Kept
	}
	g.prev, g.same = key, 0
	return s, Kept
}

// maxLoopWords is the longest n-gram looked for as a loop.
const maxLoopWords = 12

// minRepeats is how many times in a row an n-gram must occur to count as a
// loop: single words repeat in real speech ("no, no, no"), so they need more.
func minRepeats(n int) int {
	if n == 1 {
		return 4
	}
	return 3
}

// collapse keeps the first occurrence of each looping n-gram in text, and
// drops the same repeats from words (matched on the words' own text). ok is
// false when nothing loops.
func collapse(text string, words []engine.Word) (string, []engine.Word, bool) {
	toks := strings.Fields(text)
	keep := loopFree(normAll(toks))
	if len(keep) == len(toks) {
		return text, words, false
	}
	out := make([]string, len(keep))
	for i, k := range keep {
		out[i] = toks[k]
	}
	if len(words) > 0 {
		wt := make([]string, len(words))
		for i, w := range words {
			wt[i] = w.Text
		}
		var kept []engine.Word
		for _, k := range loopFree(normAll(wt)) {
			kept = append(kept, words[k])
		}
		words = kept
	}
	return strings.Join(out, " "), words, true
}

// loopFree returns the indices of toks to keep: every n-gram that repeats
// back to back minRepeats times or more is kept once. Where several n fit,
// the one covering the most words wins.
func loopFree(toks []string) []int {
	keep := make([]int, 0, len(toks))
	for i := 0; i < len(toks); {
		bestN, bestR := 0, 0
		for n := 1; n <= maxLoopWords && i+2*n <= len(toks); n++ {
			r := 1
			for i+(r+1)*n <= len(toks) && slices.Equal(toks[i:i+n], toks[i+r*n:i+(r+1)*n]) {
				r++
			}
			if r >= minRepeats(n) && r*n > bestR*bestN {
				bestN, bestR = n, r
			}
		}
		if bestN == 0 {
			keep = append(keep, i)
			i++
			continue
		}
		for k := i; k < i+bestN; k++ {
			keep = append(keep, k)
		}
		i += bestN * bestR
	}
	return keep
}

// normWords is text's words in lower case without the punctuation around them.
func normWords(text string) []string {
	return slices.DeleteFunc(normAll(strings.Fields(text)), func(w string) bool { return w == "" })
}

func normAll(toks []string) []string {
	out := make([]string, 0, len(toks))
	for _, t := range toks {
		out = append(out, strings.ToLower(strings.TrimFunc(t, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })))
	}
	return out
}
