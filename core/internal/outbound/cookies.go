package outbound

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// netscapeMagic is the first line Python's MozillaCookieJar, which yt-dlp
// loads cookie files with, insists on (http.cookiejar.NETSCAPE_MAGIC_RGX,
// matched at the start of the line).
var netscapeMagic = regexp.MustCompile(`^#( Netscape)? HTTP Cookie File`)

// CheckCookies says whether content is a cookies file yt-dlp will load: the
// Netscape header on the first line, then comments, blank lines and at least
// one cookie of 7 tab-separated fields with a numeric expiry. Junk is
// invalid_argument, more than store.MaxCookieFileBytes request_too_large.
// Messages name lines and counts, never content: the file is a session.
func CheckCookies(content []byte) error {
	if len(content) > store.MaxCookieFileBytes {
		return job.Errorf(errcode.RequestTooLarge, "a cookie file is at most %d KiB; this one is %d KiB", store.MaxCookieFileBytes>>10, len(content)>>10)
	}
	bad := func(format string, args ...any) error {
		return job.Errorf(job.CodeInvalidArgument, "not a Netscape cookies file: "+format, args...)
	}
	if bytes.IndexByte(content, 0) >= 0 {
		return bad("it holds NUL bytes")
	}
	text := strings.TrimPrefix(string(content), "\ufeff")
	if t := strings.TrimSpace(text); strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{") {
		return bad("this is JSON; export the cookies in Netscape (cookies.txt) format")
	}
	lines := strings.Split(text, "\n")
	if !netscapeMagic.MatchString(strings.TrimRight(lines[0], "\r")) {
		return bad("the first line must be \"# Netscape HTTP Cookie File\"")
	}
	cookies := 0
	for i, line := range lines[1:] {
		line = strings.TrimRight(line, "\r")
		line = strings.TrimPrefix(line, "#HttpOnly_") // a cookie, marked HttpOnly
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			return bad("line %d has %d tab-separated fields; a cookie has 7", i+2, len(f))
		}
		if f[0] == "" {
			return bad("line %d has no domain", i+2)
		}
		if f[4] != "" && strings.Trim(f[4], "0123456789") != "" {
			return bad("line %d: the expiry (5th field) is not a number", i+2)
		}
		cookies++
	}
	if cookies == 0 {
		return bad("it holds no cookie")
	}
	return nil
}
