package ytdlp

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Captions is a video's own transcript, fetched without its media.
type Captions struct {
	Result    // Title, Uploader, Duration and the site's metadata; no Path
	Segments  []job.Segment
	Automatic bool // the site's speech recognition, not captions a person made
	// Language is the captions' language: the one asked for, or for "auto"
	// the one chosen (OwnLanguage).
	Language string
}

// CaptionArgs is the argument list for fetching url's captions in lang into
// dir: the info JSON and one caption file, never the media. json3 is
// YouTube's own format (word timings for automatic captions); WebVTT is what
// other sites offer.
func (d *Downloader) CaptionArgs(dir, url, lang string, automatic bool) []string {
	return append(d.subArgs(dir, lang+","+lang+"-.*", automatic), "--", url)
}

func (d *Downloader) subArgs(dir, langs string, automatic bool) []string {
	args := append(d.common(dir), "--skip-download", "--write-subs", "--sub-langs", langs, "--sub-format", "json3/vtt")
	if automatic {
		args = append(args, "--write-auto-subs")
	}
	return args
}

// FetchCaptions fetches url's captions in lang: those a person made, and with
// automatic also the site's automatic ones when there are none. found is false
// when the video has no such captions.
//
// lang "auto" takes the video's own captions, in the language it is spoken
// in (OwnLanguage); that costs a second yt-dlp run, which reads the first's
// info JSON (--load-info-json) instead of asking the site again.
func (d *Downloader) FetchCaptions(ctx context.Context, dir, url, lang string, automatic bool) (c Captions, found bool, err error) {
	if lang == "auto" {
		return d.fetchOwnCaptions(ctx, dir, url, automatic)
	}
	if _, err := d.run(ctx, dir, d.CaptionArgs(dir, url, lang, automatic)); err != nil {
		return Captions{}, false, err
	}
	infos, _ := filepath.Glob(filepath.Join(dir, "*.info.json"))
	if len(infos) == 0 {
		return Captions{}, false, &job.Error{Code: job.CodeDownloadFailed, Message: "yt-dlp wrote no video information", Retryable: true}
	}
	r, info := readInfo(infos[0])
	return readCaptions(infos[0], r, info, lang)
}

func (d *Downloader) fetchOwnCaptions(ctx context.Context, dir, url string, automatic bool) (Captions, bool, error) {
	path, info, err := d.extract(ctx, dir, url)
	if err != nil {
		return Captions{}, false, err
	}
	l := info.tracks()
	t, ok := OwnLanguage(l, automatic)
	if !ok {
		return Captions{Result: l.Result}, false, nil
	}
	key := t.Language
	if t.Automatic {
		// The original track, whichever key lists it ("en" or "en-orig"),
		// and not its translations ("de-en").
		key = regexp.QuoteMeta(t.Language) + "(" + origSuffix + ")?"
	}
	args := append(d.subArgs(dir, key, automatic && t.Automatic), "--load-info-json", path)
	if _, err := d.run(ctx, dir, args); err != nil {
		return Captions{}, false, err
	}
	c, found, err := readCaptions(path, l.Result, info, t.Language)
	c.Language = t.Language
	return c, found, err
}

// OwnLanguage chooses the track "auto" takes: a person's captions in the
// language the video is spoken in (the exact code first, then a regional
// one: "en", then "en-GB"), else the only captions a person made, else —
// with automatic — the site's own speech recognition in that language.
func OwnLanguage(l Listing, automatic bool) (Track, bool) {
	var human []Track
	for _, t := range l.Tracks {
		if !t.Automatic {
			human = append(human, t)
		}
	}
	if l.Language != "" {
		if i := slices.IndexFunc(human, func(t Track) bool { return t.Language == l.Language }); i >= 0 {
			return human[i], true
		}
		if i := slices.IndexFunc(human, func(t Track) bool { return sameLanguage(t.Language, l.Language) }); i >= 0 {
			return human[i], true
		}
	}
	if len(human) == 1 {
		return human[0], true
	}
	if automatic {
		if i := slices.IndexFunc(l.Tracks, func(t Track) bool { return t.Automatic && t.Original }); i >= 0 {
			return l.Tracks[i], true
		}
	}
	return Track{}, false
}

// readCaptions parses the caption file in lang yt-dlp wrote beside the info
// JSON at infoPath.
func readCaptions(infoPath string, r Result, info *infoJSON, lang string) (c Captions, found bool, err error) {
	c.Result, c.Language = r, lang
	stem := strings.TrimSuffix(infoPath, ".info.json")
	var manual map[string]json.RawMessage
	if info != nil {
		manual = info.Subtitles
	}
	for _, ext := range []string{"json3", "vtt"} {
		// "en" may come as en-US, en-GB, or en-orig (YouTube's original-language track).
		files, _ := filepath.Glob(stem + "." + lang + "*." + ext)
		slices.SortFunc(files, func(a, b string) int { return len(a) - len(b) }) // the exact language first
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if ext == "json3" {
				c.Segments, err = ParseJSON3(b)
			} else {
				c.Segments = ParseVTT(b)
			}
			if err != nil {
				return Captions{}, false, &job.Error{Code: job.CodeDownloadFailed, Message: "the video's captions could not be read", Err: err}
			}
			_, isManual := manual[strings.TrimSuffix(strings.TrimPrefix(f, stem+"."), "."+ext)]
			c.Automatic = !isManual
			return c, len(c.Segments) > 0, nil
		}
	}
	return c, false, nil
}

// json3 is YouTube's timed-text format: events with a start and duration,
// each with text pieces ("segs") offset from the event's start.
type json3 struct {
	Events []struct {
		StartMS    int64 `json:"tStartMs"`
		DurationMS int64 `json:"dDurationMs"`
		Append     int   `json:"aAppend"`
		Segs       []struct {
			Text     string `json:"utf8"`
			OffsetMS int64  `json:"tOffsetMs"`
		} `json:"segs"`
	} `json:"events"`
}

// ParseJSON3 turns json3 captions into segments. Automatic captions come as
// word pieces with offsets (kept as word timings) and as "append" events that
// only add a line break to the rolling two-line window; those, window
// definitions and repeats of the line before carry no new words and are
// dropped. A segment ends where the next begins, so the rolling window's
// overlap never reaches the cues.
func ParseJSON3(b []byte) ([]job.Segment, error) {
	var doc json3
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("json3: %w", err)
	}
	var segs []job.Segment
	for _, ev := range doc.Events {
		var text strings.Builder
		var words []job.Word
		for _, p := range ev.Segs {
			text.WriteString(p.Text)
			if w := strings.TrimSpace(p.Text); w != "" {
				words = append(words, job.Word{StartMS: ev.StartMS + p.OffsetMS, Text: w})
			}
		}
		t := strings.Join(strings.Fields(text.String()), " ")
		if t == "" || ev.Append == 1 {
			continue
		}
		if n := len(segs); n > 0 && segs[n-1].Text == t {
			continue // the rolling window showing the same line again
		}
		s := job.Segment{StartMS: ev.StartMS, EndMS: ev.StartMS + ev.DurationMS, Text: t}
		if len(words) > 1 { // word pieces: automatic captions
			for i := range words {
				words[i].EndMS = s.EndMS
				if i+1 < len(words) {
					words[i].EndMS = words[i+1].StartMS
				}
			}
			s.Words = words
		}
		segs = append(segs, s)
	}
	return settle(segs), nil
}

// maxRollingLines is the most lines a rolling cue repeats from the one before.
const maxRollingLines = 4

var (
	vttTiming = regexp.MustCompile(`^(\d+:)?(\d{2}):(\d{2})\.(\d{3})\s+-->\s+(\d+:)?(\d{2}):(\d{2})\.(\d{3})`)
	vttTags   = regexp.MustCompile(`<[^>]*>`)
)

// ParseVTT turns WebVTT captions into segments, dropping markup and the
// rolling repeats of automatic captions (each cue repeating the line before
// it, then adding one).
func ParseVTT(b []byte) []job.Segment {
	var segs []job.Segment
	var prevLines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur *job.Segment
	var lines []string
	flush := func() {
		if cur == nil {
			return
		}
		fresh := lines
		// A rolling cue starts with the lines the previous one ended with:
		// a window of a few lines (YouTube's holds two). Looking no further
		// keeps a file of long cues linear, not quadratic, in their lines.
		for k := min(len(prevLines), len(lines), maxRollingLines); k > 0; k-- {
			if slices.Equal(prevLines[len(prevLines)-k:], lines[:k]) {
				fresh = lines[k:]
				break
			}
		}
		prevLines = lines
		if t := strings.Join(strings.Fields(strings.Join(fresh, " ")), " "); t != "" {
			cur.Text = t
			segs = append(segs, *cur)
		}
		cur, lines = nil, nil
	}
	for sc.Scan() {
		raw := strings.TrimRight(sc.Text(), "\r")
		line := strings.TrimSpace(raw)
		if m := vttTiming.FindStringSubmatch(line); m != nil {
			flush()
			cur = &job.Segment{StartMS: vttMS(m[1:5]), EndMS: vttMS(m[5:9])}
			continue
		}
		if raw == "" { // only an empty line ends a cue: YouTube's hold a line of one space
			flush()
			continue
		}
		if cur != nil {
			if t := strings.TrimSpace(unescapeVTT(vttTags.ReplaceAllString(strings.ToValidUTF8(line, "\uFFFD"), ""))); t != "" {
				lines = append(lines, t)
			}
		}
	}
	flush()
	return settle(segs)
}

// settle puts segments in time order, numbers them and ends each where the
// next begins. Whatever the file claimed — cues out of order, ending before
// they start, before zero — times end up non-negative and ordered, and words
// inside their segment.
func settle(segs []job.Segment) []job.Segment {
	for i := range segs {
		segs[i].StartMS = max(segs[i].StartMS, 0)
		segs[i].EndMS = max(segs[i].EndMS, segs[i].StartMS)
	}
	slices.SortStableFunc(segs, func(a, b job.Segment) int { return cmp.Compare(a.StartMS, b.StartMS) })
	for i := range segs {
		segs[i].Seq = i
		if i+1 < len(segs) && segs[i].EndMS > segs[i+1].StartMS {
			segs[i].EndMS = segs[i+1].StartMS
		}
		for k := range segs[i].Words {
			w := &segs[i].Words[k]
			w.StartMS = min(max(w.StartMS, segs[i].StartMS), segs[i].EndMS)
			w.EndMS = min(max(w.EndMS, w.StartMS), segs[i].EndMS)
		}
	}
	return segs
}

func vttMS(p []string) int64 {
	n := func(s string) int64 { v, _ := strconv.ParseInt(strings.TrimSuffix(s, ":"), 10, 64); return v }
	return ((n(p[0])*60+n(p[1]))*60+n(p[2]))*1000 + n(p[3])
}

var vttEntities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&nbsp;", " ", "&lrm;", "", "&rlm;", "")

func unescapeVTT(s string) string { return vttEntities.Replace(s) }
