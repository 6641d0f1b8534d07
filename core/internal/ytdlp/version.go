package ytdlp

import (
	"strings"
	"time"
)

// JSRuntimeSince is the first yt-dlp release that needs an external
// JavaScript runtime for YouTube and knows --js-runtimes and
// --remote-components; older ones stop at those options with exit 2.
var JSRuntimeSince = time.Date(2025, 11, 12, 0, 0, 0, 0, time.UTC)

// ReleaseDate reads the date in a yt-dlp version: its releases are named by
// day ("2025.11.12", "2023.03.04", nightly "2025.11.12.232851"). ok is false
// for anything else (a git build, a distribution's own suffix it cannot read).
func ReleaseDate(version string) (time.Time, bool) {
	parts := strings.Split(strings.TrimSpace(version), ".")
	if len(parts) < 3 {
		return time.Time{}, false
	}
	t, err := time.Parse("2006.01.02", strings.Join(parts[:3], "."))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// KnowsJSRuntimes reports whether yt-dlp of this version accepts the
// JavaScript-runtime options. An unreadable version is taken as old: an
// unknown option fails every download, a missing one only YouTube's.
func KnowsJSRuntimes(version string) bool {
	t, ok := ReleaseDate(version)
	return ok && !t.Before(JSRuntimeSince)
}
