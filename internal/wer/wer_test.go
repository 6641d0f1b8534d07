package wer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ref, hyp string
		want     float64
	}{
		{"he was not an ill disposed young man", "he was not an ill disposed young man", 0},
		{"He was NOT, an ill-disposed young man.", "he was not an ill disposed young man", 0},
		{"a b c d", "a x c d", 0.25},   // substitution
		{"a b c d", "a c d", 0.25},     // deletion
		{"a b c d", "a b b c d", 0.25}, // insertion
		{"a b", "", 1},                 // all deleted
		{"a", "x y z", 3},              // WER can exceed 1
		{"", "", 0},
		{"don't stop", "dont stop", 0.5}, // apostrophes are part of words
	} {
		require.InDelta(t, tc.want, Rate(tc.ref, tc.hyp), 1e-9, "%q vs %q", tc.ref, tc.hyp)
	}
}

func TestCorpusWeightsByReferenceLength(t *testing.T) {
	t.Parallel()
	var c Corpus
	require.InDelta(t, 1.0, c.Add("a", "b"), 1e-9)
	require.InDelta(t, 0.0, c.Add("a b c", "a b c"), 1e-9)
	require.InDelta(t, 0.25, c.Rate(), 1e-9) // 1 error over 4 words, not the mean of 1 and 0
}

func TestNumbersAreSpelledOut(t *testing.T) {
	for in, want := range map[string]string{
		"0": "zero", "7": "seven", "13": "thirteen", "40": "forty", "42": "forty two", "100": "one hundred",
		"1999": "one thousand nine hundred ninety nine", "2000000": "two million", "1000001": "one million one",
		"in 1905, 3 cats": "in one thousand nine hundred five three cats",
	} {
		require.Equal(t, strings.Fields(want), Words(in), in)
	}
	require.Zero(t, Rate("forty two apples", "42 apples"))
}
