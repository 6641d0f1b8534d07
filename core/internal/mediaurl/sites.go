package mediaurl

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// site is a host family that yt-dlp has an extractor for. Where the site's
// URLs carry a stable id, canon rebuilds one URL per video from it, so the
// transcript cache meets the same video however it was linked (player.,
// m., share links, tracking parameters).
type site struct {
	extractor string   // yt-dlp's name for the site's extractors, lower-case
	hosts     []string // the host and its subdomains
	ids       *regexp.Regexp
	canon     string // with $1 (and $2) from ids; "" keeps the cleaned URL
}

// sites are the sites people paste most after YouTube. Any other host is
// taken as a direct media file (and, where the operator enabled yt-dlp's
// generic extractor, a page that holds one).
var sites = []site{
	{"vimeo", []string{"vimeo.com"}, regexp.MustCompile(`^/(?:video/|channels/[^/]+/|groups/[^/]+/videos/)?(\d+)(?:/|$)`), "https://vimeo.com/$1"},
	{"soundcloud", []string{"soundcloud.com"}, regexp.MustCompile(`^/([\w-]+/[\w-]+)/?$`), "https://soundcloud.com/$1"},
	{"tiktok", []string{"tiktok.com"}, regexp.MustCompile(`^/@([\w.-]+)/video/(\d+)`), "https://www.tiktok.com/@$1/video/$2"},
	{"twitch", []string{"twitch.tv"}, regexp.MustCompile(`^/videos/(\d+)`), "https://www.twitch.tv/videos/$1"},
	{"twitter", []string{"x.com", "twitter.com"}, regexp.MustCompile(`^/[\w]+/status(?:es)?/(\d+)`), "https://x.com/i/status/$1"},
	{"dailymotion", []string{"dailymotion.com"}, regexp.MustCompile(`^/video/([a-z0-9]+)`), "https://www.dailymotion.com/video/$1"},
	{"dailymotion", []string{"dai.ly"}, regexp.MustCompile(`^/([a-z0-9]+)$`), "https://www.dailymotion.com/video/$1"},
	{"bandcamp", []string{"bandcamp.com"}, nil, ""},
	{"applepodcasts", []string{"podcasts.apple.com"}, nil, ""},
	{"ted", []string{"ted.com"}, regexp.MustCompile(`^/talks/([\w-]+)`), "https://www.ted.com/talks/$1"},
	{"archive.org", []string{"archive.org"}, regexp.MustCompile(`^/details/([\w.-]+)`), "https://archive.org/details/$1"},
	{"mixcloud", []string{"mixcloud.com"}, nil, ""},
	{"rumble", []string{"rumble.com"}, nil, ""},
	{"facebook", []string{"facebook.com", "fb.watch"}, nil, ""},
	{"instagram", []string{"instagram.com"}, regexp.MustCompile(`^/(?:p|reel|reels|tv)/([\w-]+)`), "https://www.instagram.com/p/$1/"},
	{"reddit", []string{"reddit.com"}, nil, ""},
	{"bilibili", []string{"bilibili.com"}, regexp.MustCompile(`^/video/(BV[\w]+|av\d+)`), "https://www.bilibili.com/video/$1"},
	{"streamable", []string{"streamable.com"}, regexp.MustCompile(`^/([a-z0-9]+)$`), "https://streamable.com/$1"},
	{"loom", []string{"loom.com"}, regexp.MustCompile(`^/share/([a-f0-9]+)`), "https://www.loom.com/share/$1"},
}

// Extractors is the default allowlist for yt-dlp's --ies: YouTube's video
// extractor and every extractor of the sites ytcaption recognises. yt-dlp
// matches each entry as a case-insensitive regular expression against the
// whole extractor name, so "vimeo.*" takes vimeo, vimeo:ondemand, …; a
// site's single-video extractor is among them, and --no-playlist keeps its
// playlist extractors from expanding.
func Extractors() string {
	out := []string{"youtube"}
	for _, s := range sites {
		p := regexp.QuoteMeta(s.extractor) + ".*"
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

func siteOf(host string) (site, bool) {
	for _, s := range sites {
		for _, h := range s.hosts {
			if host == h || strings.HasSuffix(host, "."+h) {
				return s, true
			}
		}
	}
	return site{}, false
}

// fromSite is a page on a known site: its canonical URL, rebuilt from the id
// where the table knows the site's URL form, else the URL without its
// fragment (the query may name the episode, as on Apple Podcasts).
func fromSite(s site, u *url.URL) Source {
	if s.ids != nil {
		if m := s.ids.FindStringSubmatchIndex(u.EscapedPath()); m != nil {
			canon := string(s.ids.ExpandString(nil, s.canon, u.EscapedPath(), m))
			return Source{Kind: job.SourceSite, URL: canon, Site: s.extractor}
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return Source{Kind: job.SourceSite, URL: u.String(), Site: s.extractor}
}
