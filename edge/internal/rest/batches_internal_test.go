package rest

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestOpenAPIBatchSchemasMatchTheJSON: the batch JSON and the request body
// have exactly the fields the document names.
func TestOpenAPIBatchSchemasMatchTheJSON(t *testing.T) {
	for schema, v := range map[string]any{"Batch": batchJSON{}, "CreateBatch": batchBody{}, "BatchCounts": batchCounts{}} {
		var fields []string
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			fields = append(fields, name)
		}
		var documented []string
		for name := range loadOpenAPI(t).Components.Schemas[schema].Properties {
			documented = append(documented, name)
		}
		slices.Sort(fields)
		slices.Sort(documented)
		require.Equal(t, fields, documented, schema)
	}
}

func TestSafeName(t *testing.T) {
	t.Parallel()
	for title, want := range map[string]string{
		"Lecture 1: Intro":       "Lecture 1_ Intro",
		"../../etc/passwd":       "_.._etc_passwd",
		`..\..\windows\system32`: `_.._windows_system32`,
		"...hidden":              "hidden",
		"  spaced  ":             "spaced",
		"bell\x07and\nnewline":   "bell_and_newline",
		"evil\u202etxt.exe":      "evil_txt.exe",
		"":                       "job-id",
		"///":                    "___",
		"trailing dot.":          "trailing dot",
		strings.Repeat("é", 300): strings.Repeat("é", maxNameRunes),
		"C:\\Users\\a":           "C__Users_a",
		"invalid \xff utf8":      "invalid _ utf8",
		"日本語のタイトル":               "日本語のタイトル",
	} {
		require.Equal(t, want, safeName(title, "job-id"), "%q", title)
	}
	used := map[string]bool{}
	require.Equal(t, "a.srt", uniqueName(used, "a", "srt"))
	require.Equal(t, "A (2).srt", uniqueName(used, "A", "srt"), "names differing only in case collide on some file systems")
	require.Equal(t, "a (3).srt", uniqueName(used, "a", "srt"))
}

func FuzzSafeName(f *testing.F) {
	f.Add("../x")
	f.Add("\u202e..")
	f.Fuzz(func(t *testing.T, title string) {
		name := safeName(title, "fallback")
		require.NotEmpty(t, name)
		require.True(t, utf8.ValidString(name))
		require.LessOrEqual(t, utf8.RuneCountInString(name), maxNameRunes)
		require.False(t, strings.ContainsAny(name, `/\:`), name)
		require.False(t, strings.HasPrefix(name, "."), name)
		for _, r := range name {
			require.False(t, r < 0x20 || r == 0x7f, "%q", name)
		}
	})
}
