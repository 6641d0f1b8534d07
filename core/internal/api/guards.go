package api

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// A job's vocabulary: engines read a prompt of a few hundred tokens, and the
// gpu-node matches every term against every segment.
const (
	MaxVocabularyTerms     = 100
	MaxVocabularyTermChars = 64
)

// checkVocabulary refuses a vocabulary of too many terms, or a term that is
// blank, too long, not UTF-8 or holds a control character (a term is
// written into prompts and transcripts as it is).
func checkVocabulary(terms []string) error {
	if len(terms) > MaxVocabularyTerms {
		return job.Errorf(job.CodeInvalidArgument, "a vocabulary is at most %d terms, got %d", MaxVocabularyTerms, len(terms))
	}
	for i, t := range terms {
		switch {
		case !utf8.ValidString(t):
			return job.Errorf(job.CodeInvalidArgument, "vocabulary term %d is not UTF-8", i+1)
		case strings.TrimSpace(t) == "":
			return job.Errorf(job.CodeInvalidArgument, "vocabulary term %d is blank", i+1)
		case utf8.RuneCountInString(t) > MaxVocabularyTermChars:
			return job.Errorf(job.CodeInvalidArgument, "vocabulary term %d is longer than %d characters", i+1, MaxVocabularyTermChars)
		case strings.ContainsFunc(t, func(r rune) bool { return !unicode.IsPrint(r) }):
			return job.Errorf(job.CodeInvalidArgument, "vocabulary term %d holds a control or unprintable character", i+1)
		}
	}
	return nil
}

// cleanVocabulary trims the terms and keeps the first of any that differ
// only in case: a term's spelling is what the transcript gets, so two
// spellings of one term cannot both win.
func cleanVocabulary(terms []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range terms {
		t = strings.TrimSpace(t)
		if k := strings.ToLower(t); !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	return out
}

// guardOn is a guard option as asked: on unless set false.
func guardOn(v *bool) bool { return v == nil || *v }
