package ytdlp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Entry is one item of a playlist, a channel or a page with several media,
// as yt-dlp lists it without downloading anything (--flat-playlist).
type Entry struct {
	ID    string
	URL   string // what to fetch: a video's page, or a media file's own URL
	Title string
	// UploadDate is YYYYMMDD, or "" when the listing does not say: YouTube's
	// flat playlist entries carry no date, a full extraction would.
	UploadDate string
	LiveStatus string // "is_live", "is_upcoming", … or ""
}

// entriesFile receives one JSON object per entry.
const entriesFile = ".entries.jsonl"

// maxEntriesBytes bounds what a listing may write: 1000 entries of a few
// hundred bytes each, with room for long titles. A page can claim anything.
const maxEntriesBytes = 8 << 20

// entryFields are the fields printed per entry: few, so a page's formats and
// headers never reach the file.
const entryFields = "%(.{id,url,webpage_url,original_url,title,upload_date,live_status,ie_key,_type})j"

// listExtractors are YouTube's extractors of lists — a playlist, a
// channel's tabs — which downloads never need: the allowlist's "youtube" is
// the video extractor alone, and without these yt-dlp finds no extractor for
// a playlist URL.
const listExtractors = "youtube:tab,youtube:playlist"

// EntriesArgs is the exact argument list for listing url's first limit entries
// into dir. Unlike a download's (common), it asks for the playlist
// (--yes-playlist), lists without resolving each entry where the extractor
// can (--flat-playlist), and downloads nothing (--simulate).
func (d *Downloader) EntriesArgs(dir, url string, limit int) []string {
	args := []string{
		"--ignore-config", "--ies", d.cfg.Extractors + "," + listExtractors, "--yes-playlist", "--flat-playlist", "--simulate",
		"--playlist-end", strconv.Itoa(limit),
		"--socket-timeout", "30", "--extractor-retries", "3", "--no-progress",
		"--print-to-file", entryFields, filepath.Join(dir, entriesFile),
	}
	return append(append(args, d.session(dir)...), "--", url)
}

// Entries lists the first limit entries of url — a playlist, a channel's tab or
// a page with several media — through the same egress proxy, outbound
// route and error classification as a download.
func (d *Downloader) Entries(ctx context.Context, dir, url string, limit int) ([]Entry, error) {
	if limit <= 0 {
		return nil, errors.New("list: limit must be positive")
	}
	if _, err := d.run(ctx, dir, d.EntriesArgs(dir, url, limit)); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, entriesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // nothing listed
	}
	if err != nil {
		return nil, fmt.Errorf("read the listing: %w", err)
	}
	defer f.Close()
	return parseEntries(io.LimitReader(f, maxEntriesBytes), limit)
}

// parseEntries reads --print-to-file's lines. An entry without a URL it
// can make absolute is skipped: there is nothing to fetch.
func parseEntries(r io.Reader, limit int) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []Entry
	for sc.Scan() && len(out) < limit {
		var e struct {
			ID, URL, Title string
			WebpageURL     string `json:"webpage_url"`
			OriginalURL    string `json:"original_url"`
			UploadDate     string `json:"upload_date"`
			LiveStatus     string `json:"live_status"`
			IEKey          string `json:"ie_key"`
			Type           string `json:"_type"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		u := absolute(e.URL)
		if u == "" && e.IEKey == "Youtube" && videoIDish(e.ID) {
			u = "https://www.youtube.com/watch?v=" + e.ID // older yt-dlp lists a bare id
		}
		if u == "" {
			u = absolute(e.WebpageURL)
		}
		if u == "" {
			continue
		}
		date := e.UploadDate
		if len(date) != 8 || !allDigits(date) {
			date = ""
		}
		out = append(out, Entry{ID: e.ID, URL: u, Title: e.Title, UploadDate: date, LiveStatus: e.LiveStatus})
	}
	if err := sc.Err(); err != nil {
		return nil, &job.Error{Code: job.CodeDownloadFailed, Message: "yt-dlp's listing could not be read", Err: err}
	}
	return out, nil
}

// absolute returns raw when it is an absolute http(s) URL, else "".
func absolute(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return raw
}

var videoIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{11}$`)

func videoIDish(id string) bool { return videoIDRE.MatchString(id) }

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
