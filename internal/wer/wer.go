// Package wer scores transcripts against references: word error rate
// (S + D + I) / N after normalising case, punctuation and numbers, counted
// the way NIST sclite counts it. Tests and the evaluation tool share it.
package wer

import (
	"strconv"
	"strings"
	"unicode"
)

// Words lowercases s, turns everything but letters, digits and apostrophes into
// spaces, spells numbers out ("42" → "forty two": engines write digits where
// references spell, and the reverse) and splits it into words.
func Words(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	}) {
		if n, err := strconv.ParseUint(w, 10, 64); err == nil && n < 1e12 {
			out = append(out, spell(n)...)
			continue
		}
		out = append(out, w)
	}
	return out
}

var (
	ones = strings.Fields("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen")
	tens = strings.Fields("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
)

// spell writes n < 10^12 in English words, without "and".
func spell(n uint64) []string {
	switch {
	case n < 20:
		return []string{ones[n]}
	case n < 100:
		if n%10 == 0 {
			return []string{tens[n/10]}
		}
		return []string{tens[n/10], ones[n%10]}
	case n < 1000:
		return join(spell(n/100), "hundred", n%100)
	case n < 1e6:
		return join(spell(n/1000), "thousand", n%1000)
	case n < 1e9:
		return join(spell(n/1e6), "million", n%1e6)
	}
	return join(spell(n/1e9), "billion", n%1e9)
}

func join(head []string, unit string, rest uint64) []string {
	out := append(head, unit)
	if rest > 0 {
		out = append(out, spell(rest)...)
	}
	return out
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
