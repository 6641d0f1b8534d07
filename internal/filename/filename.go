// Package filename turns titles — which strangers choose — into file names
// for caption files: the server's captions.zip and the CLI's output folder
// name them the same way, and neither may be led outside its folder.
package filename

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxRunes bounds a name before its extension.
const MaxRunes = 100

// Safe makes title a file name no unzip tool or file system reads as a path
// or a device: path separators, control and format characters
// (bidirectional overrides) and characters Windows refuses become "_",
// leading dots and spaces go, and it is cut to MaxRunes. An empty result is
// fallback (made safe too).
func Safe(title, fallback string) string {
	var b strings.Builder
	for _, r := range title {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r), strings.ContainsRune(`/\:*?"<>|`, r):
			b.WriteRune('_')
		default:
			b.WriteRune(r)
		}
	}
	name := strings.TrimLeft(strings.TrimSpace(b.String()), ". ")
	if r := []rune(name); len(r) > MaxRunes {
		name = strings.TrimSpace(string(r[:MaxRunes]))
	}
	name = strings.TrimRight(name, ". ")
	if name == "" {
		if fallback == "" {
			return "captions"
		}
		return Safe(fallback, "")
	}
	return name
}

// Unique is base.ext, or "base (2).ext", "base (3).ext", … the first that
// used does not hold, compared case-insensitively (as on macOS and Windows);
// it records the name in used.
func Unique(used map[string]bool, base, ext string) string {
	name := base + "." + ext
	for n := 2; used[strings.ToLower(name)]; n++ {
		name = fmt.Sprintf("%s (%d).%s", base, n, ext)
	}
	used[strings.ToLower(name)] = true
	return name
}
