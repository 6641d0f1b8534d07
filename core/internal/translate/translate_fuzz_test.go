package translate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzShare: a sentence's translation shared out over its cues loses and
// invents nothing but whitespace, gives an empty cue nothing and every other
// cue its part, in order.
func FuzzShare(f *testing.F) {
	f.Add("Der schnelle braune Fuchs springt über den Hund.", "The quick brown fox\x00jumps over the dog.")
	f.Add("快速的棕色狐狸跳过了狗。", "The quick brown fox\x00\x00jumps over the dog.")
	f.Add("", "a\x00b")
	f.Fuzz(func(t *testing.T, translated, joined string) {
		if !utf8.ValidString(translated) || !utf8.ValidString(joined) {
			t.Skip()
		}
		cues := strings.Split(joined, "\x00")
		parts := share(translated, cues)
		if len(parts) != len(cues) {
			t.Fatalf("%d parts for %d cues", len(parts), len(cues))
		}
		for i, c := range cues {
			if c == "" && parts[i] != "" {
				t.Fatalf("cue %d is empty but got %q", i, parts[i])
			}
		}
		squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if got, want := squash(strings.Join(parts, " ")), squash(translated); got != want && nonEmptyCount(cues) > 0 {
			t.Fatalf("parts %q do not make up %q", parts, translated)
		}
	})
}

func nonEmptyCount(ss []string) int { return len(nonEmpty(ss)) }

// FuzzParseCues: whatever a model answers, parseCues returns exactly the
// cues asked for or a bad answer, never a panic.
func FuzzParseCues(f *testing.F) {
	f.Add(`{"cues":[{"id":1,"text":"a"},{"id":2,"text":"b"}]}`, 2)
	f.Add("```json\n{\"cues\":[{\"id\":2,\"text\":\"b\"},{\"id\":2,\"text\":\"b\"}]}\n```", 2)
	f.Add(`{"cues":[{"id":0,"text":"a"}]}`, 1)
	f.Fuzz(func(t *testing.T, content string, n int) {
		if n < 0 || n > 100 {
			t.Skip()
		}
		texts, err := parseCues(content, n)
		if err == nil && len(texts) != n {
			t.Fatalf("%d texts for %d", len(texts), n)
		}
		if err != nil {
			if _, ok := err.(*badAnswer); !ok {
				t.Fatalf("not a bad answer: %v", err)
			}
		}
	})
}
