// Package vocab applies a job's vocabulary — names and jargon the caller
// expects ("Kubernetes", "Nomad", "Wi-Fi") — to an engine's output: every
// whole-word, case-insensitive occurrence of a term takes the term's own
// spelling, whatever engine produced the text. Engines that read a prompt are
// also given the terms (Prompt), so that they hear them in the first place.
package vocab

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Fixer rewrites text so that known terms are spelled as given.
type Fixer struct {
	terms []term
}

type term struct {
	text  string         // as the caller spelled it
	parts []string       // its words in lower case (split at spaces and hyphens)
	re    *regexp.Regexp // the parts in any case, any spaces or hyphens between
}

// New builds a fixer for terms; blank terms, and any that is not UTF-8, are
// ignored. A nil or empty
// list gives a fixer that changes nothing.
func New(terms []string) *Fixer {
	f := &Fixer{}
	seen := map[string]bool{}
	for _, t := range terms {
		t = strings.TrimSpace(t)
		parts := splitTerm(t)
		key := strings.Join(parts, " ")
		if len(parts) == 0 || seen[key] || !utf8.ValidString(t) {
			continue
		}
		seen[key] = true
		quoted := make([]string, len(parts))
		for i, p := range parts {
			quoted[i] = regexp.QuoteMeta(p)
		}
		f.terms = append(f.terms, term{text: t, parts: parts, re: regexp.MustCompile(`(?i)` + strings.Join(quoted, `[\s\-]+`))})
	}
	// Longer terms first: "Nomad Autoscaler" before "Nomad".
	slices.SortStableFunc(f.terms, func(a, b term) int { return cmp.Compare(len(b.parts), len(a.parts)) })
	return f
}

func splitTerm(t string) []string {
	return strings.FieldsFunc(strings.ToLower(t), func(r rune) bool { return unicode.IsSpace(r) || r == '-' })
}

// Empty says whether the fixer has no terms.
func (f *Fixer) Empty() bool { return len(f.terms) == 0 }

// Text spells every whole-word occurrence of a term as the term: never
// inside another word ("nomadic" stays).
func (f *Fixer) Text(s string) string {
	for _, t := range f.terms {
		locs := t.re.FindAllStringIndex(s, -1)
		if len(locs) == 0 {
			continue
		}
		var b strings.Builder
		last := 0
		for _, l := range locs {
			if !wordEdge(s, l[0], l[1], t.text) {
				continue
			}
			b.WriteString(s[last:l[0]])
			b.WriteString(t.text)
			last = l[1]
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return s
}

// wordEdge says whether s[i:j] stands alone: no letter or digit right
// before or after it, where the term itself begins or ends with one.
func wordEdge(s string, i, j int, term string) bool {
	first, _ := utf8.DecodeRuneInString(term)
	lastR, _ := utf8.DecodeLastRuneInString(term)
	if before, _ := utf8.DecodeLastRuneInString(s[:i]); i > 0 && isWord(first) && isWord(before) {
		return false
	}
	if after, _ := utf8.DecodeRuneInString(s[j:]); j < len(s) && isWord(lastR) && isWord(after) {
		return false
	}
	return true
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_' }

// Words spells the words of a segment the same way: a term of one word (or
// one hyphenated token) in place, a term of several words over as many words
// in a row, each word keeping the punctuation around it.
func (f *Fixer) Words(words []string) []string {
	out := slices.Clone(words)
	for i := range out {
		out[i] = f.Text(out[i])
	}
	for _, t := range f.terms {
		if len(t.parts) < 2 {
			continue
		}
		spelled := strings.Fields(t.text) // the term's words as given, when they are split at spaces
		if len(spelled) != len(t.parts) {
			continue
		}
		for i := 0; i+len(t.parts) <= len(out); i++ {
			match := true
			for k, p := range t.parts {
				if _, core, _ := cut(out[i+k]); strings.ToLower(core) != p {
					match = false
					break
				}
			}
			if !match {
				continue
			}
			for k := range t.parts {
				pre, _, post := cut(out[i+k])
				out[i+k] = pre + spelled[k] + post
			}
		}
	}
	return out
}

// cut splits a word into the punctuation before it, itself, and after.
func cut(w string) (pre, core, post string) {
	start := strings.IndexFunc(w, isWord)
	if start < 0 {
		return w, "", ""
	}
	end := strings.LastIndexFunc(w, isWord)
	_, size := utf8.DecodeRuneInString(w[end:])
	return w[:start], w[start : end+size], w[end+size:]
}

// Prompt is what an engine that reads a prompt is given: the caller's prompt,
// then the terms. Whisper keeps the end of a prompt that is too long, so the
// terms, last, are what survives.
func Prompt(prompt string, terms []string) string {
	if len(terms) == 0 {
		return prompt
	}
	list := strings.Join(terms, ", ") + "."
	if prompt == "" {
		return list
	}
	return strings.TrimSpace(prompt) + " " + list
}
