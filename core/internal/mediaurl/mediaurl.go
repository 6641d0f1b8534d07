// Package mediaurl validates a submitted media URL and says how to fetch it:
// YouTube links in all their forms become one canonical watch URL for yt-dlp;
// pages on other sites yt-dlp knows (Vimeo, SoundCloud, TikTok, …) become
// one canonical URL each for yt-dlp too; other http(s) URLs are direct media
// for the SSRF-safe client.
package mediaurl

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Source is a validated media URL.
type Source struct {
	Kind    job.SourceKind
	URL     string // canonical
	VideoID string // YouTube only
	Site    string // yt-dlp's extractor for a site page (SourceSite)
}

const maxLen = 2048

var videoID = regexp.MustCompile(`^[A-Za-z0-9_-]{11}$`)

var youtubeHosts = map[string]bool{
	"youtube.com": true, "www.youtube.com": true, "m.youtube.com": true, "music.youtube.com": true,
	"youtube-nocookie.com": true, "www.youtube-nocookie.com": true,
}

// Canonical is the URL yt-dlp is given for a video id.
func Canonical(id string) string { return "https://www.youtube.com/watch?v=" + id }

func invalid(format string, args ...any) error {
	return job.Errorf(job.CodeInvalidURL, format, args...)
}

// Parse validates raw. Errors are *job.Error with code invalid_url.
func Parse(raw string) (Source, error) {
	if raw == "" {
		return Source{}, invalid("a url is required")
	}
	if len(raw) > maxLen {
		return Source{}, invalid("the URL is longer than %d characters", maxLen)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return Source{}, invalid("the URL contains spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Source{}, invalid("the URL cannot be parsed")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return Source{}, invalid("only http and https URLs are supported, not %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return Source{}, invalid("the URL has no host")
	}
	if u.User != nil {
		return Source{}, invalid("URLs with credentials are not accepted")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if youtubeHosts[host] || host == "youtu.be" {
		return youtube(host, u)
	}
	if strings.HasSuffix(host, ".youtube.com") || strings.HasSuffix(host, ".youtube-nocookie.com") ||
		strings.HasSuffix(host, ".youtu.be") || strings.HasPrefix(host, "youtube.") {
		// A YouTube host we do not know (gaming., a look-alike TLD): fetching it
		// as direct media would only fail later and less clearly.
		return Source{}, invalid("%s is not a supported YouTube host: use www.youtube.com, m.youtube.com, music.youtube.com or youtu.be", host)
	}
	u.Scheme, u.Host, u.Fragment, u.RawFragment = scheme, strings.ToLower(u.Host), "", ""
	if s, ok := siteOf(host); ok {
		return fromSite(s, u), nil
	}
	return Source{Kind: job.SourceHTTP, URL: u.String()}, nil
}

func youtube(host string, u *url.URL) (Source, error) {
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	var id string
	switch {
	case host == "youtu.be":
		id = strings.TrimPrefix(path, "/")
	case path == "/watch":
		id = u.Query().Get("v")
		if id == "" {
			return Source{}, invalid("a YouTube watch URL needs a v= video id")
		}
	case path == "/playlist":
		return Source{}, invalid("a playlist is a batch: submit it to POST /v1/batches, or one video's URL here")
	default:
		for _, p := range []string{"/shorts/", "/live/", "/embed/", "/v/"} {
			if rest, ok := strings.CutPrefix(path, p); ok {
				id = rest
				break
			}
		}
		if id == "" {
			return Source{}, invalid("this YouTube URL does not point at a video")
		}
	}
	if !videoID.MatchString(id) {
		return Source{}, invalid("%q is not a YouTube video id (11 characters of A-Z, a-z, 0-9, _ and -)", id)
	}
	return Source{Kind: job.SourceYouTube, URL: Canonical(id), VideoID: id}, nil
}
