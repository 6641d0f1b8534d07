// Package wer scores transcripts against references: word error rate
// (S + D + I) / N after normalising case and punctuation, the way NIST sclite
// counts it. Tests and the evaluation tool share it.
package wer

import (
	"strings"
	"unicode"
)

// Words lowercases s, turns everything but letters, digits and apostrophes into
// spaces, and splits it into words.
func Words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// Errors returns the minimum number of substitutions, deletions and insertions
// that turn ref into hyp (Levenshtein distance over words).
func Errors(ref, hyp []string) int {
	row := make([]int, len(hyp)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(ref); i++ {
		diag := row[0]
		row[0] = i
		for j := 1; j <= len(hyp); j++ {
			cost := 1
			if ref[i-1] == hyp[j-1] {
				cost = 0
			}
			up := row[j]
			row[j] = min(row[j]+1, row[j-1]+1, diag+cost)
			diag = up
		}
	}
	return row[len(hyp)]
}

// Rate is the word error rate of hyp against ref; 0 for an empty reference and
// an empty hypothesis.
func Rate(ref, hyp string) float64 {
	r, h := Words(ref), Words(hyp)
	if len(r) == 0 {
		if len(h) == 0 {
			return 0
		}
		return 1
	}
	return float64(Errors(r, h)) / float64(len(r))
}

// Corpus accumulates errors over many utterances: its rate weights each by its
// reference length, as sclite's corpus figure does.
type Corpus struct{ Errs, Words int }

// Add scores one utterance and returns its own rate.
func (c *Corpus) Add(ref, hyp string) float64 {
	r, h := Words(ref), Words(hyp)
	e := Errors(r, h)
	c.Errs += e
	c.Words += len(r)
	if len(r) == 0 {
		return 0
	}
	return float64(e) / float64(len(r))
}

// Rate is the corpus word error rate.
func (c *Corpus) Rate() float64 {
	if c.Words == 0 {
		return 0
	}
	return float64(c.Errs) / float64(c.Words)
}
