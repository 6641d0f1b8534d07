package mediaurl

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

func TestYouTubeFormsAreCanonicalised(t *testing.T) {
	t.Parallel()
	const want = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
	for _, raw := range []string{
		"https://www.youtube.com/watch?v=dQw4w9WgXcQ",
		"http://youtube.com/watch?v=dQw4w9WgXcQ",
		"https://m.youtube.com/watch?v=dQw4w9WgXcQ&feature=share",
		"https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDdQw4w9WgXcQ",
		"https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs&index=2",
		"https://www.youtube.com/watch?feature=youtu.be&v=dQw4w9WgXcQ",
		"https://youtu.be/dQw4w9WgXcQ",
		"https://youtu.be/dQw4w9WgXcQ?t=42",
		"https://www.youtube.com/shorts/dQw4w9WgXcQ",
		"https://www.youtube.com/shorts/dQw4w9WgXcQ/",
		"https://www.youtube.com/live/dQw4w9WgXcQ?si=abc",
		"https://www.youtube.com/embed/dQw4w9WgXcQ",
		"https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
		"https://www.youtube.com/v/dQw4w9WgXcQ",
		"HTTPS://WWW.YOUTUBE.COM/watch?v=dQw4w9WgXcQ",
		"https://www.youtube.com./watch?v=dQw4w9WgXcQ",
	} {
		s, err := Parse(raw)
		require.NoError(t, err, raw)
		require.Equal(t, job.SourceYouTube, s.Kind, raw)
		require.Equal(t, want, s.URL, raw)
		require.Equal(t, "dQw4w9WgXcQ", s.VideoID, raw)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"",
		"ftp://example.com/a.mp3",
		"file:///etc/passwd",
		"javascript:alert(1)",
		"mailto:a@example.com",
		"example.com/a.mp3",
		"https://",
		"https://user:pass@example.com/a.mp3",
		"https://example.com/a b.mp3",
		"https://example.com/a\x00.mp3",
		"https://example.com/" + strings.Repeat("a", 2100),
		"https://www.youtube.com/playlist?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
		"https://www.youtube.com/watch?list=PL590L5WQmH8fJ54F369BLDSqIwcs-TCfs",
		"https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw",
		"https://www.youtube.com/@somebody",
		"https://www.youtube.com/",
		"https://www.youtube.com/watch?v=short",
		"https://www.youtube.com/watch?v=dQw4w9WgXcQQ",
		"https://www.youtube.com/watch?v=dQw4w9WgX!Q",
		"https://youtu.be/",
		"https://youtu.be/dQw4w9WgXc",
		"https://www.youtube.com/shorts/",
		"https://www.youtube.com/shorts/dQw4w9WgXcQ/extra",
		"https://gaming.youtube.com/watch?v=dQw4w9WgXcQ", // unsupported YouTube hosts
		"https://youtube.co.uk/watch?v=dQw4w9WgXcQ",
		"https://tv.youtube.com/watch?v=dQw4w9WgXcQ",
	} {
		_, err := Parse(raw)
		require.Error(t, err, raw)
		require.Equal(t, job.CodeInvalidURL, job.CodeOf(err), raw)
	}
}

func TestDirectURLsAreNormalised(t *testing.T) {
	t.Parallel()
	s, err := Parse("HTTPS://Media.Example.COM:8443/Path/Clip.ogg?x=1#frag")
	require.NoError(t, err)
	require.Equal(t, job.SourceHTTP, s.Kind)
	require.Equal(t, "https://media.example.com:8443/Path/Clip.ogg?x=1", s.URL)
	s, err = Parse("http://127.0.0.1:8081/clip.ogg")
	require.NoError(t, err, "addresses are checked when dialled, not here")
	require.Equal(t, "http://127.0.0.1:8081/clip.ogg", s.URL)
}

// FuzzParse: Parse never panics and refuses only with invalid_url; a
// YouTube result has an 11-character id and the canonical watch URL; a direct
// result is an http(s) URL with a host, no credentials and no fragment, names
// the host it was given, and parses again to itself. Seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"https://youtu.be/dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=x",
		"http://example.com/a.mp3", "https://www.youtube.com/shorts/dQw4w9WgXcQ", "ftp://x", "https://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := Parse(raw)
		if err != nil {
			require.Equal(t, job.CodeInvalidURL, job.CodeOf(err))
			return
		}
		switch s.Kind {
		case job.SourceYouTube:
			require.Len(t, s.VideoID, 11)
			require.Regexp(t, `^[A-Za-z0-9_-]{11}$`, s.VideoID)
			require.Equal(t, Canonical(s.VideoID), s.URL)
		case job.SourceHTTP:
			require.Empty(t, s.VideoID)
			u, err := url.Parse(s.URL)
			require.NoError(t, err, s.URL)
			require.Contains(t, []string{"http", "https"}, u.Scheme, s.URL)
			require.NotEmpty(t, u.Host, s.URL)
			require.NotEmpty(t, u.Hostname(), s.URL)
			require.Nil(t, u.User, "no userinfo: %s", s.URL)
			require.Empty(t, u.Fragment, s.URL)
			require.Empty(t, u.Opaque, s.URL)
			orig, err := url.Parse(raw)
			require.NoError(t, err)
			require.Equal(t, strings.ToLower(orig.Host), u.Host, "the host fetched is the host given")
			if len(s.URL) <= maxLen { // escaping may lengthen it past the limit
				again, err := Parse(s.URL)
				require.NoError(t, err, "the canonical form parses: %s", s.URL)
				require.Equal(t, s, again, "the canonical form is canonical")
			}
		default:
			t.Fatalf("unknown kind %q", s.Kind)
		}
	})
}

func TestSitePagesAreCanonicalisedPerExtractor(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string][2]string{
		"https://vimeo.com/76979871":                                   {"vimeo", "https://vimeo.com/76979871"},
		"https://player.vimeo.com/video/76979871?h=abc#t=10":           {"vimeo", "https://vimeo.com/76979871"},
		"https://vimeo.com/channels/staffpicks/76979871":               {"vimeo", "https://vimeo.com/76979871"},
		"https://soundcloud.com/artist/track-name?utm_source=x":        {"soundcloud", "https://soundcloud.com/artist/track-name"},
		"https://m.soundcloud.com/artist/track-name/":                  {"soundcloud", "https://soundcloud.com/artist/track-name"},
		"https://www.tiktok.com/@some.one/video/7106594312292453675?x": {"tiktok", "https://www.tiktok.com/@some.one/video/7106594312292453675"},
		"https://www.twitch.tv/videos/1234567890":                      {"twitch", "https://www.twitch.tv/videos/1234567890"},
		"https://twitter.com/someone/status/1620000000000000000?s=20":  {"twitter", "https://x.com/i/status/1620000000000000000"},
		"https://x.com/someone/status/1620000000000000000":             {"twitter", "https://x.com/i/status/1620000000000000000"},
		"https://dai.ly/x8abcd1":                                       {"dailymotion", "https://www.dailymotion.com/video/x8abcd1"},
		"https://www.ted.com/talks/some_speaker_a_talk?language=en":    {"ted", "https://www.ted.com/talks/some_speaker_a_talk"},
		"https://artist.bandcamp.com/track/a-song#lyrics":              {"bandcamp", "https://artist.bandcamp.com/track/a-song"},
		"https://podcasts.apple.com/us/podcast/x/id1?i=1000":           {"applepodcasts", "https://podcasts.apple.com/us/podcast/x/id1?i=1000"},
	} {
		s, err := Parse(raw)
		require.NoError(t, err, raw)
		require.Equal(t, job.SourceSite, s.Kind, raw)
		require.Equal(t, want[0], s.Site, raw)
		require.Equal(t, want[1], s.URL, raw)
	}
	// A host that merely ends like a site's is not that site.
	s, err := Parse("https://notvimeo.com/76979871")
	require.NoError(t, err)
	require.Equal(t, job.SourceHTTP, s.Kind)
	require.True(t, strings.HasPrefix(Extractors(), "youtube,vimeo.*,"), Extractors())
	require.Contains(t, Extractors(), `,archive\.org.*,`)
	require.NotContains(t, Extractors(), "generic", "the generic extractor is opt-in")
}
