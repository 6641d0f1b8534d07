package mediaurl

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

var (
	listID    = regexp.MustCompile(`^[A-Za-z0-9_-]{2,64}$`)
	channelID = regexp.MustCompile(`^UC[A-Za-z0-9_-]{22}$`)
	handle    = regexp.MustCompile(`^@[\p{L}\p{N}._-]{1,100}$`)
	custom    = regexp.MustCompile(`^[\p{L}\p{N}._-]{1,100}$`)
)

// ParseBatch validates the source of a batch — a YouTube playlist, a
// channel, or a page on another site that holds several media — and returns
// the URL yt-dlp enumerates. A YouTube channel becomes its uploads
// (/videos), newest first; a watch URL inside a playlist (&list=) becomes
// the playlist. One YouTube video is refused: it is a job, not a batch.
// Other hosts are taken as Parse takes them; whether the page holds a list
// is for yt-dlp to find. Errors are *job.Error with code invalid_url.
func ParseBatch(raw string) (Source, error) {
	if len(raw) > maxLen {
		return Source{}, invalid("the URL is longer than %d characters", maxLen)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return Source{}, invalid("the URL contains spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return Parse(raw) // its message
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	scheme := strings.ToLower(u.Scheme)
	if !youtubeHosts[host] || (scheme != "http" && scheme != "https") || u.User != nil {
		src, err := Parse(raw)
		if err == nil && src.Kind == job.SourceYouTube {
			return Source{}, invalid("this is one video: submit it to POST /v1/jobs")
		}
		return src, err
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	yt := func(p string) (Source, error) {
		return Source{Kind: job.SourceYouTube, URL: "https://www.youtube.com" + p}, nil
	}
	if list := u.Query().Get("list"); list != "" && (path == "/playlist" || path == "/watch") {
		if !listID.MatchString(list) {
			return Source{}, invalid("%q is not a YouTube playlist id", list)
		}
		return yt("/playlist?list=" + list)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	// A channel's tab ("/videos", "/streams", "/shorts", "/podcasts") is
	// kept; the channel itself means its uploads.
	tab := "/videos"
	if len(parts) >= 2 {
		switch t := parts[len(parts)-1]; t {
		case "videos", "streams", "shorts", "podcasts":
			tab = "/" + t
			parts = parts[:len(parts)-1]
		}
	}
	name, _ := url.PathUnescape(parts[len(parts)-1])
	switch {
	case len(parts) == 1 && handle.MatchString(name):
		return yt("/" + url.PathEscape(name) + tab)
	case len(parts) == 2 && parts[0] == "channel" && channelID.MatchString(name):
		return yt("/channel/" + name + tab)
	case len(parts) == 2 && (parts[0] == "c" || parts[0] == "user") && custom.MatchString(name):
		return yt("/" + parts[0] + "/" + url.PathEscape(name) + tab)
	}
	if src, err := Parse(raw); err == nil && src.Kind == job.SourceYouTube {
		return Source{}, invalid("this is one video: submit it to POST /v1/jobs")
	}
	return Source{}, invalid("this YouTube URL is not a playlist (/playlist?list=) or a channel (/@name, /channel/UC…, /c/name)")
}
