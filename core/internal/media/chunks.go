package media

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/ytcaption/ytcaption/internal/proc"
	"github.com/ytcaption/ytcaption/internal/wav"
)

// Span is a stretch of time.
type Span struct{ Start, End time.Duration }

var silenceRE = regexp.MustCompile(`silence_(start|end): (-?[0-9.]+)`)

// Silences finds the quiet stretches of at least half a second in the WAV at path with
// ffmpeg's silencedetect: the places to cut long audio without cutting words.
func (t *Tool) Silences(ctx context.Context, path string) ([]Span, error) {
	args := append([]string{"-nostdin", "-hide_banner", "-nostats"}, inputArgs(path, "wav")...)
	cmd := proc.Command(ctx, proc.DefaultGrace, t.cfg.FFmpeg, append(args, "-af", "silencedetect=noise=-35dB:d=0.5", "-f", "null", "-")...)
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ffmpeg silencedetect: %w", err)
	}
	var spans []Span
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		m := silenceRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		at := time.Duration(max(v, 0) * float64(time.Second))
		if m[1] == "start" {
			spans = append(spans, Span{Start: at, End: -1})
		} else if n := len(spans); n > 0 && spans[n-1].End < 0 {
			spans[n-1].End = at
		}
	}
	if n := len(spans); n > 0 && spans[n-1].End < 0 {
		spans = spans[:n-1] // silent to the end: nothing after it to cut from
	}
	return spans, nil
}

// CutPoints chooses where to cut audio of length total into chunks of at
// most target: in the middle of the last silence that fits, so no word is
// cut, else (speech without a pause) exactly at the limit. Cuts are whole
// milliseconds, so chunk offsets stay exact.
func CutPoints(total, target time.Duration, silences []Span) []time.Duration {
	var cuts []time.Duration
	from := time.Duration(0)
	for total-from > target {
		limit := from + target
		cut := limit
		for _, s := range silences {
			mid := (s.Start + s.End) / 2
			if mid > from+target/4 && mid <= limit { // not a sliver of a chunk
				cut = mid
			}
		}
		cut = cut.Truncate(time.Millisecond)
		cuts = append(cuts, cut)
		from = cut
	}
	return cuts
}

// SplitWAV cuts a 16 kHz mono 16-bit WAV at cuts into files in dir, by
// copying samples: nothing is re-encoded, and a chunk starting at cut c
// starts at exactly sample c×16 of the whole. It returns the files in order.
func SplitWAV(path, dir string, cuts []time.Duration) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dataStart, dataLen, err := wav.FindData(f)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", path, err)
	}
	bounds := []int64{0}
	for _, c := range cuts {
		bounds = append(bounds, min(c.Milliseconds()*wav.SampleRate/1000*wav.BytesPerSample, dataLen))
	}
	bounds = append(bounds, dataLen)
	var paths []string
	for i := 0; i+1 < len(bounds); i++ {
		p := filepath.Join(dir, fmt.Sprintf("chunk-%04d.wav", i))
		if err := wav.Write(p, io.NewSectionReader(f, dataStart+bounds[i], bounds[i+1]-bounds[i]), bounds[i+1]-bounds[i]); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
