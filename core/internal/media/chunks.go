package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/ytcaption/ytcaption/internal/proc"
)

// Span is a stretch of time.
type Span struct{ Start, End time.Duration }

var silenceRE = regexp.MustCompile(`silence_(start|end): (-?[0-9.]+)`)

// Silences finds the quiet stretches of at least half a second in wav with
// ffmpeg's silencedetect: the places to cut long audio without cutting words.
func (t *Tool) Silences(ctx context.Context, wav string) ([]Span, error) {
	cmd := proc.Command(ctx, proc.DefaultGrace, t.cfg.FFmpeg, "-nostdin", "-hide_banner", "-nostats",
		"-protocol_whitelist", "file", "-i", "file:"+wav, "-af", "silencedetect=noise=-35dB:d=0.5", "-f", "null", "-")
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

const (
	sampleRate     = 16000
	bytesPerSample = 2
)

// SplitWAV cuts a 16 kHz mono 16-bit WAV at cuts into files in dir, by
// copying samples: nothing is re-encoded, and a chunk starting at cut c
// starts at exactly sample c×16 of the whole. It returns the files in order.
func SplitWAV(wav, dir string, cuts []time.Duration) ([]string, error) {
	f, err := os.Open(wav)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dataStart, dataLen, err := findData(f)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", wav, err)
	}
	bounds := []int64{0}
	for _, c := range cuts {
		bounds = append(bounds, min(c.Milliseconds()*sampleRate/1000*bytesPerSample, dataLen))
	}
	bounds = append(bounds, dataLen)
	var paths []string
	for i := 0; i+1 < len(bounds); i++ {
		p := filepath.Join(dir, fmt.Sprintf("chunk-%04d.wav", i))
		if err := writeWAV(p, io.NewSectionReader(f, dataStart+bounds[i], bounds[i+1]-bounds[i]), bounds[i+1]-bounds[i]); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// findData walks the RIFF chunks to the "data" chunk: ffmpeg may write
// others (LIST) before it.
func findData(r io.ReadSeeker) (start, length int64, err error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || string(hdr[:4]) != "RIFF" || string(hdr[8:]) != "WAVE" {
		return 0, 0, errors.New("not a WAV file")
	}
	pos := int64(12)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return 0, 0, errors.New("a WAV file without data")
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		pos += 8
		if string(ch[:4]) == "data" {
			if end, err := r.Seek(0, io.SeekEnd); err == nil && (size == 0 || size == 0xffffffff || pos+size > end) {
				size = end - pos // a streamed header leaves the size unset
			}
			return pos, size &^ 1, nil
		}
		pos += size + size&1
		if _, err := r.Seek(pos, io.SeekStart); err != nil {
			return 0, 0, err
		}
	}
}

// writeWAV writes n bytes of 16 kHz mono 16-bit samples from r as a WAV file.
func writeWAV(path string, r io.Reader, n int64) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	hdr := make([]byte, 44)
	copy(hdr, "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+n))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1) // PCM
	binary.LittleEndian.PutUint16(hdr[22:], 1) // mono
	binary.LittleEndian.PutUint32(hdr[24:], sampleRate)
	binary.LittleEndian.PutUint32(hdr[28:], sampleRate*bytesPerSample)
	binary.LittleEndian.PutUint16(hdr[32:], bytesPerSample)
	binary.LittleEndian.PutUint16(hdr[34:], 8*bytesPerSample)
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(n))
	if _, err := out.Write(hdr); err != nil {
		out.Close()
		return err
	}
	if _, err := io.CopyN(out, r, n); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// WAVDuration is how long a 16 kHz mono 16-bit WAV lasts, from its data size.
func WAVDuration(wav string) (time.Duration, error) {
	f, err := os.Open(wav)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	_, n, err := findData(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", wav, err)
	}
	return time.Duration(n/bytesPerSample) * time.Second / sampleRate, nil
}
