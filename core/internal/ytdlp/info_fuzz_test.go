package ytdlp

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzInfoJSON reads arbitrary info JSON as a listing: whatever a site put
// there, it never panics, and what comes out is checked — http(s) URLs,
// real dates, plain site names and language codes, capped one-line text.
func FuzzInfoJSON(f *testing.F) {
	b, err := os.ReadFile(youtubeInfo)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte(`{"subtitles":{"en":[{"ext":"vtt","url":"javascript:x","name":"\u0000"}]},"automatic_captions":{"en-orig":[{"url":"https://x/?tlang=de"}]}}`))
	f.Add([]byte(`{"title":["x"],"upload_date":"99999999","thumbnail":"data:x","extractor_key":"A B","language":"en-"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var info infoJSON
		if json.Unmarshal(in, &info) != nil {
			return
		}
		l := info.tracks()
		for _, u := range []string{l.WebpageURL, l.Thumbnail} {
			require.True(t, u == "" || strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"), u)
			require.LessOrEqual(t, len(u), maxURLBytes)
		}
		if l.UploadDate != "" {
			_, err := time.Parse(time.DateOnly, l.UploadDate)
			require.NoError(t, err)
		}
		require.True(t, l.Site == "" || siteRE.MatchString(l.Site), l.Site)
		require.True(t, l.Language == "" || trackRE.MatchString(l.Language), l.Language)
		require.GreaterOrEqual(t, l.Duration, time.Duration(0))
		for _, s := range []string{l.Title, l.Uploader, l.SiteID} {
			require.True(t, utf8.ValidString(s) && !strings.ContainsAny(s, "\n\r\x00"), "%q", s)
			require.LessOrEqual(t, utf8.RuneCountInString(s), maxTextRunes)
		}
		langs := map[bool]map[string]bool{true: {}, false: {}}
		for _, tr := range l.Tracks {
			require.True(t, trackRE.MatchString(tr.Language), tr.Language)
			require.False(t, strings.HasSuffix(tr.Language, origSuffix) && tr.Automatic, "en-orig is listed as en")
			require.False(t, tr.Automatic && langs[true][tr.Language], "one automatic track per language: %q", tr.Language)
			langs[tr.Automatic][tr.Language] = true
		}
	})
}
