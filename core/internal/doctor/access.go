package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/outbound"
)

// checkCookies reads the cookies file the way yt-dlp will: Netscape format,
// seven tab-separated fields a cookie. It counts the youtube.com cookies and
// how many of them have expired, and never prints a value.
func checkCookies(path string, now time.Time) Check {
	c := Check{Name: "cookies"}
	if path == "" {
		c.Status, c.Detail = OK, "none (optional: YouTube may ask this server to confirm it is not a bot; --yt-dlp-cookies)"
		return c
	}
	f, err := os.Open(path)
	if err != nil {
		c.Status, c.Detail = Fail, oneLine(err.Error())
		c.Fix = "core refuses to start with a cookies file it cannot read: fix --yt-dlp-cookies or its permissions"
		return c
	}
	defer f.Close()
	var header bool
	var lines, cookies, youtube, expired int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		lines++
		if lines == 1 && (strings.HasPrefix(line, "# Netscape HTTP Cookie File") || strings.HasPrefix(line, "# HTTP Cookie File")) {
			header = true
		}
		// curl and browsers' exporters mark HTTP-only cookies this way.
		line = strings.TrimPrefix(line, "#HttpOnly_")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			c.Status, c.Detail = Fail, fmt.Sprintf("line %d is not a Netscape cookie (7 tab-separated fields)", lines)
			if strings.HasPrefix(strings.TrimSpace(line), "{") || strings.HasPrefix(strings.TrimSpace(line), "[") {
				c.Detail = "the file is JSON, not Netscape format"
			}
			c.Fix = "export the cookies in Netscape format (yt-dlp's FAQ: \"How do I pass cookies to yt-dlp\")"
			return c
		}
		cookies++
		domain := strings.TrimPrefix(strings.ToLower(f[0]), ".")
		if domain != "youtube.com" && !strings.HasSuffix(domain, ".youtube.com") {
			continue
		}
		youtube++
		// 0 is a session cookie, which does not expire by date.
		if exp, err := strconv.ParseInt(f[4], 10, 64); err == nil && exp != 0 && time.Unix(exp, 0).Before(now) {
			expired++
		}
	}
	if err := sc.Err(); err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("read %s: %v", path, err)
		return c
	}
	c.Detail = fmt.Sprintf("%s: %d youtube.com cookies, %d expired (%d cookies in all)", path, youtube, expired, cookies)
	switch {
	case youtube == 0:
		c.Status, c.Fix = Warn, "it holds no youtube.com cookies, so it will not help with YouTube: export them from a browser signed in to YouTube"
	case expired == youtube:
		c.Status, c.Fix = Warn, "every youtube.com cookie has expired: export fresh ones"
	case !header:
		c.Status, c.Fix = Warn, "no \"# Netscape HTTP Cookie File\" header: check it was exported in Netscape format"
	default:
		c.Status = OK
	}
	return c
}

// checkProxies dials every proxy of the outbound pool (none: downloads go
// direct) and says which rest after a refusal. Credentials are never shown:
// the pool names a proxy by host and port.
func checkProxies(ctx context.Context, pool *outbound.Pool, timeout time.Duration) []Check {
	var checks []Check
	if pool != nil {
		for _, e := range pool.Health() {
			if e.Kind == outbound.KindProxy && e.Name != outbound.DirectLabel {
				checks = append(checks, checkProxy(ctx, e, timeout))
			}
		}
	}
	if len(checks) == 0 {
		return []Check{{Name: "proxy", Status: OK, Detail: "none (optional: --yt-dlp-proxies, --yt-dlp-proxies-file)"}}
	}
	return checks
}

func checkProxy(ctx context.Context, e outbound.EntryHealth, timeout time.Duration) Check {
	c := Check{Name: "proxy"}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.Name)
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s: %s", e.Name, dialError(err, timeout))
		c.Fix = "downloads handed this proxy fail while it is unreachable: mend it or take it out of the list"
		return c
	}
	conn.Close()
	c.Status, c.Detail = OK, fmt.Sprintf("%s accepts connections (%s)", e.Name, time.Since(start).Round(time.Millisecond))
	if e.Resting {
		c.Status = Warn
		c.Detail += fmt.Sprintf("; rests until %s after %s", e.Until.Format(time.RFC3339), e.Code)
	}
	return c
}

func dialError(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no connection within %s", timeout)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}
