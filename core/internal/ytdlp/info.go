package ytdlp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Result is a finished download, or what a caption fetch or listing learned
// of the video. Every field but Path comes from yt-dlp's info JSON, which the
// site fills in: the strings are checked and capped before anyone stores them.
type Result struct {
	Path     string
	Title    string
	Uploader string // the channel or account that published it
	Duration time.Duration

	Site       string // yt-dlp's extractor key, lower-case: "youtube", "vimeo", "generic"
	SiteID     string // the site's id of the video ("dQw4w9WgXcQ")
	WebpageURL string // the video's own page, as the site names it; http(s) only
	UploadDate string // YYYY-MM-DD; "" when the site does not say
	Thumbnail  string // a still of the video; http(s) only
}

// MaxInfoBytes bounds the info JSON read: YouTube's runs to a few megabytes
// (every format, every caption translation); a file past this is refused, not
// read into memory.
const MaxInfoBytes = 16 << 20

// Caps on the strings an info JSON hands us, so a hostile or broken site
// cannot grow a job row without bound.
const (
	maxTextRunes = 500  // title, uploader, track name
	maxIDRunes   = 200  // the site's id
	maxURLBytes  = 2048 // webpage_url, thumbnail
	maxSiteBytes = 64   // extractor key
)

// laxString is a string field that a site may fill with anything: a number,
// null or an object reads as "" instead of failing the whole document.
type laxString string

func (s *laxString) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = laxString(v)
	}
	return nil
}

// laxTracks is a map of caption tracks, or empty when the site put
// something else there.
type laxTracks map[string]json.RawMessage

func (t *laxTracks) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) == nil {
		*t = m
	}
	return nil
}

// subFormat is one file a caption track is offered as.
type subFormat struct {
	Ext  laxString `json:"ext"`
	URL  laxString `json:"url"`
	Name laxString `json:"name"`
}

// infoJSON is what ytcaption reads of yt-dlp's info JSON.
type infoJSON struct {
	ID           laxString       `json:"id"`
	Title        laxString       `json:"title"`
	Uploader     laxString       `json:"uploader"`
	Channel      laxString       `json:"channel"`
	Extractor    laxString       `json:"extractor"`
	ExtractorKey laxString       `json:"extractor_key"`
	WebpageURL   laxString       `json:"webpage_url"`
	UploadDate   laxString       `json:"upload_date"`
	Thumbnail    laxString       `json:"thumbnail"`
	Language     laxString       `json:"language"`
	Duration     json.RawMessage `json:"duration"` // a number of seconds, or anything
	// Each value should be a list of formats; subtitleTracks skips those that
	// are not.
	Subtitles         laxTracks `json:"subtitles"`
	AutomaticCaptions laxTracks `json:"automatic_captions"`
}

// loadInfo reads an info JSON of at most MaxInfoBytes.
func loadInfo(path string) (*infoJSON, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxInfoBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxInfoBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB", filepath.Base(path), MaxInfoBytes>>20)
	}
	var info infoJSON
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &info, nil
}

// readInfo reads what ytcaption shows of yt-dlp's info JSON; a missing or
// unreadable one leaves the Result empty (the download stands without it)
// and the info nil.
func readInfo(path string) (Result, *infoJSON) {
	info, err := loadInfo(path)
	if err != nil {
		return Result{}, nil
	}
	return info.result(), info
}

// result checks and caps what the site said.
func (info *infoJSON) result() Result {
	r := Result{
		Title:      text(string(info.Title), maxTextRunes),
		Uploader:   text(string(cmpOr(info.Uploader, info.Channel)), maxTextRunes),
		SiteID:     text(string(info.ID), maxIDRunes),
		Site:       site(string(cmpOr(info.ExtractorKey, info.Extractor))),
		WebpageURL: webURL(string(info.WebpageURL)),
		UploadDate: uploadDate(string(info.UploadDate)),
		Thumbnail:  webURL(string(info.Thumbnail)),
	}
	var seconds float64
	if json.Unmarshal(info.Duration, &seconds) == nil && seconds > 0 && seconds < 1e7 {
		r.Duration = durationOf(seconds)
	}
	return r
}

func cmpOr(a, b laxString) laxString {
	if strings.TrimSpace(string(a)) != "" {
		return a
	}
	return b
}

// text is s as one line of valid UTF-8, control characters dropped, at most
// max runes.
func text(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max])
	}
	return s
}

var siteRE = regexp.MustCompile(`^[a-z0-9][a-z0-9:_.-]*$`)

// site is an extractor key lower-cased ("Youtube" → "youtube"), or "" when
// it is not a plain name.
func site(key string) string {
	key = strings.ToLower(strings.TrimSpace(key))
	if len(key) > maxSiteBytes || !siteRE.MatchString(key) {
		return ""
	}
	return key
}

// webURL is raw when it is an absolute http(s) URL of reasonable length
// without credentials: a thumbnail is shown in browsers, and a javascript: or
// data: URL there is an attack, not a picture.
func webURL(raw string) string {
	if raw == "" || len(raw) > maxURLBytes || strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ""
	}
	return raw
}

// uploadDate turns yt-dlp's YYYYMMDD into YYYY-MM-DD, or "" when it is not a
// real date.
func uploadDate(s string) string {
	t, err := time.Parse("20060102", s)
	if err != nil || len(s) != 8 || t.Year() < 1900 {
		return ""
	}
	return t.Format(time.DateOnly)
}

// Track is one caption track a video offers.
type Track struct {
	Language string // the code to ask for, such as "en" or "pt-BR"
	Name     string // the site's name for it, such as "English"; may be ""
	// Automatic: made by the site's speech recognition, not by a person.
	Automatic bool
	// Translatable: the site offers machine translations of it (YouTube).
	Translatable bool
	// Original: in the language the video is spoken in, when that is known.
	Original bool
}

// Listing is what a video offers without downloading it.
type Listing struct {
	Result
	Language string // the language the video is spoken in, when known
	Tracks   []Track
}

// trackRE is the shape of a caption language yt-dlp lists: a BCP 47-like
// code ("en", "zh-Hans", "en-orig"). It leaves out YouTube's "live_chat",
// which is chat replay, not captions.
var trackRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$`)

// origSuffix marks YouTube's original automatic track ("en-orig") in the
// yt-dlp versions that list it.
const origSuffix = "-orig"

// tracks lists the video's caption tracks.
//
// Human tracks (subtitles) are all listed. automatic_captions is, on
// YouTube, the speech-recognition track in the spoken language followed by
// its machine translation into every language YouTube knows — a hundred and
// more, each a URL with a tlang parameter. Only the original is listed: a
// track whose formats carry no tlang, one whose key ends in "-orig", or the
// one in the video's own language; "en" and "en-orig" are one track, "en".
// When translations are on offer (any tlang), every listed track is marked
// translatable: YouTube translates the human tracks as well as the
// automatic one.
func (info *infoJSON) tracks() Listing {
	l := Listing{Result: info.result(), Language: language(string(info.Language))}
	auto := formatsOf(info.AutomaticCaptions)
	translatable := false
	for _, fs := range auto {
		translatable = translatable || slices.ContainsFunc(fs, hasTlang)
	}
	human := formatsOf(info.Subtitles)
	for _, key := range sortedKeys(human) {
		fs := human[key]
		l.Tracks = append(l.Tracks, Track{Language: key, Name: trackName(fs), Translatable: translatable, Original: sameLanguage(key, l.Language)})
	}
	seen := map[string]bool{}
	for _, key := range sortedKeys(auto) {
		fs := auto[key]
		lang := strings.TrimSuffix(key, origSuffix)
		original := !slices.ContainsFunc(fs, hasTlang) || lang != key || (l.Language != "" && key == l.Language)
		if !original || seen[lang] || !trackRE.MatchString(lang) || strings.HasSuffix(lang, origSuffix) {
			continue
		}
		seen[lang] = true
		l.Tracks = append(l.Tracks, Track{Language: lang, Name: trackName(fs), Automatic: true, Translatable: translatable,
			Original: l.Language == "" || sameLanguage(lang, l.Language)})
	}
	if l.Language == "" {
		// Speech recognition transcribes the language spoken.
		if i := slices.IndexFunc(l.Tracks, func(t Track) bool { return t.Automatic }); i >= 0 && len(seen) == 1 {
			l.Language = l.Tracks[i].Language
		}
	}
	return l
}

// formatsOf reads each track's formats, leaving out tracks whose key is not
// a language or whose value is not a list of formats.
func formatsOf(m laxTracks) map[string][]subFormat {
	out := make(map[string][]subFormat, len(m))
	for key, raw := range m {
		var fs []subFormat
		if trackRE.MatchString(key) && json.Unmarshal(raw, &fs) == nil && len(fs) > 0 {
			out[key] = fs
		}
	}
	return out
}

func sortedKeys(m map[string][]subFormat) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}

func hasTlang(f subFormat) bool {
	u, err := url.Parse(string(f.URL))
	return err == nil && u.Query().Get("tlang") != ""
}

func trackName(fs []subFormat) string {
	for _, f := range fs {
		if n := text(string(f.Name), maxTextRunes); n != "" {
			return n
		}
	}
	return ""
}

// language is a site's language code when it looks like one.
func language(s string) string {
	if !trackRE.MatchString(s) {
		return ""
	}
	return s
}

// sameLanguage reports whether track is in lang: "en-US" and "en" are.
func sameLanguage(track, lang string) bool {
	if lang == "" {
		return false
	}
	base := func(s string) string { b, _, _ := strings.Cut(strings.ToLower(s), "-"); return b }
	return base(track) == base(lang)
}

// ListArgs is the argument list for reading what url offers into dir: the
// info JSON alone (common's --write-info-json), neither media nor captions.
// The JSON is read from its file rather than printed (-J): run keeps only the
// tail of yt-dlp's output, and the file's size can be checked before it is
// read.
func (d *Downloader) ListArgs(dir, url string) []string {
	return append(d.common(dir), "--skip-download", "--", url)
}

// ListCaptions reads url's metadata and caption tracks without downloading
// its media or any caption. Failures are typed as Download's are.
func (d *Downloader) ListCaptions(ctx context.Context, dir, url string) (Listing, error) {
	_, info, err := d.extract(ctx, dir, url)
	if err != nil {
		return Listing{}, err
	}
	return info.tracks(), nil
}

// extract runs yt-dlp for url's info JSON alone and reads it.
func (d *Downloader) extract(ctx context.Context, dir, url string) (path string, info *infoJSON, err error) {
	output, err := d.run(ctx, dir, d.ListArgs(dir, url))
	if err != nil {
		return "", nil, err
	}
	if path, err = infoFile(dir, output, d.cfg.MaxDuration); err != nil {
		return "", nil, err
	}
	if info, err = loadInfo(path); err != nil {
		return "", nil, &job.Error{Code: job.CodeDownloadFailed, Message: "yt-dlp's video information could not be read", Err: err}
	}
	return path, info, nil
}

// infoFile finds the info JSON yt-dlp wrote into dir. Like a download, an
// extraction may exit 0 without one: a match filter skipped the video.
func infoFile(dir, output string, maxDuration time.Duration) (string, error) {
	infos, _ := filepath.Glob(filepath.Join(dir, "*.info.json"))
	if len(infos) > 0 {
		return infos[0], nil
	}
	if e := Classify(0, output, maxDuration); e.Code != job.CodeDownloadFailed {
		return "", e
	}
	return "", &job.Error{Code: job.CodeDownloadFailed, Message: "yt-dlp wrote no video information", Retryable: true, Err: errors.New(lastError(output))}
}
