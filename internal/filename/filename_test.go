package filename

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestSafe(t *testing.T) {
	t.Parallel()
	for title, want := range map[string]string{
		"Lecture 1: Intro":       "Lecture 1_ Intro",
		"../../etc/passwd":       "_.._etc_passwd",
		`..\..\windows\system32`: `_.._windows_system32`,
		"..":                     "job-id",
		"...hidden":              "hidden",
		"  . hidden":             "hidden",
		"  spaced  ":             "spaced",
		"bell\x07and\nnewline":   "bell_and_newline",
		"evil\u202etxt.exe":      "evil_txt.exe",
		"":                       "job-id",
		"///":                    "___",
		"trailing dot.":          "trailing dot",
		strings.Repeat("é", 300): strings.Repeat("é", MaxRunes),
		"C:\\Users\\a":           "C__Users_a",
		"invalid \xff utf8":      "invalid _ utf8",
		"日本語のタイトル":               "日本語のタイトル",
	} {
		got := Safe(title, "job-id")
		require.Equal(t, want, got, "%q", title)
		require.True(t, filepath.IsLocal(got+".srt"), got)
	}
	require.Equal(t, "captions", Safe("..", ".."), "a fallback that is no name either")
}

func TestUnique(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	require.Equal(t, "a.srt", Unique(used, "a", "srt"))
	require.Equal(t, "A (2).srt", Unique(used, "A", "srt"), "names differing only in case collide on macOS and Windows")
	require.Equal(t, "a (3).srt", Unique(used, "a", "srt"))
}

// FuzzSafe: whatever the title, the name is one element inside its folder.
func FuzzSafe(f *testing.F) {
	for _, s := range []string{"../../etc/passwd", "..", "a/b", `\\server\share`, "\x00", "CON", "\u202e.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, title string) {
		name := Safe(title, "fallback")
		require.NotEmpty(t, name)
		require.True(t, utf8.ValidString(name))
		require.LessOrEqual(t, utf8.RuneCountInString(name), MaxRunes)
		require.False(t, strings.ContainsAny(name, `/\:`), name)
		require.False(t, strings.HasPrefix(name, "."), name)
		require.True(t, filepath.IsLocal(name+".srt"), name)
		for _, r := range name {
			require.False(t, r < 0x20 || r == 0x7f, "%q", name)
		}
	})
}
