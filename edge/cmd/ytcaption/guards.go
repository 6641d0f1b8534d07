package main

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The server's bounds on a job's vocabulary, checked here too so that a
// mistake is a usage error before anything is uploaded.
const (
	maxVocabularyTerms     = 100
	maxVocabularyTermChars = 64
)

// parseVocabulary reads --vocabulary: comma-separated terms.
func parseVocabulary(v string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "":
			continue
		case utf8.RuneCountInString(t) > maxVocabularyTermChars:
			return nil, usagef("--vocabulary terms are at most %d characters, got %q", maxVocabularyTermChars, t)
		case strings.ContainsFunc(t, func(r rune) bool { return !unicode.IsPrint(r) }):
			return nil, usagef("--vocabulary term %q holds a control character", t)
		}
		out = append(out, t)
	}
	if len(out) > maxVocabularyTerms {
		return nil, usagef("--vocabulary takes at most %d terms, got %d", maxVocabularyTerms, len(out))
	}
	return out, nil
}

// parseGuards reads --guards: the hallucination guards to run, comma-
// separated (silence, repetition), or none. It returns the job's "guards"
// object: each guard on or off.
func parseGuards(v string) (map[string]bool, error) {
	g := map[string]bool{"silence": false, "repetition": false}
	if strings.TrimSpace(v) == "none" {
		return g, nil
	}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if _, ok := g[name]; !ok {
			return nil, usagef("--guards takes silence, repetition (comma-separated) or none, got %q", name)
		}
		g[name] = true
	}
	return g, nil
}
