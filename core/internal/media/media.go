// Package media probes downloaded files with ffprobe and decodes their audio,
// once, to what every engine takes: 16 kHz mono signed 16-bit WAV.
//
// Two rules hold for every file a stranger sent. The tools read it through an
// allowlist of audio and video container demuxers and only the file protocol
// (inputArgs), so no playlist, concat script, image sequence or other demuxer
// can make them open another file or URL, whatever the file's name says. And
// a container's duration is a claim: the length that counts — for limits,
// chunking and billing — is the number of samples Normalize decoded, and the
// decoding stops a second past the limit, so a file that lies about its
// length can neither slip past the limit nor fill the disk.
package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/proc"
	"github.com/ytcaption/ytcaption/internal/wav"
)

// Config names the binaries.
type Config struct {
	FFmpeg, FFprobe string // defaults "ffmpeg", "ffprobe"
}

// Tool runs ffprobe and ffmpeg.
type Tool struct{ cfg Config }

// New returns a Tool.
func New(cfg Config) *Tool {
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.FFprobe == "" {
		cfg.FFprobe = "ffprobe"
	}
	return &Tool{cfg: cfg}
}

// Demuxers are the only container formats ffprobe and ffmpeg may read a
// download as (-format_whitelist; a multi-name demuxer such as
// "mov,mp4,m4a,3gp,3g2,mj2" matches by any of its names). None of them opens
// another file or URL: not hls, dash, concat, image2, lavfi, tee or any other
// playlist, script or sequence demuxer, which ffmpeg would otherwise pick by
// content whatever the file is called. (mov could follow external data
// references, but only with enable_drefs, which is off.) Checked against
// ffmpeg 5.1's `ffmpeg -demuxers`.
var Demuxers = []string{
	"mov", "matroska", "ogg", "mp3", "wav", "w64", "flac", "aac", "asf", "avi", "flv",
	"mpegts", "mpeg", "caf", "aiff", "amr", "ape", "au", "wv", "mpc", "mpc8", "tta",
	"dsf", "ac3", "eac3", "dts", "loas",
}

// inputArgs opens path for reading with only the file protocol and the given
// demuxers. Why file: and not the file over a pipe (pipe:0, only pipe
// allowed), which would shut other files out at the protocol level as well:
// an MP4 whose moov atom comes after the media data — what ffmpeg and most
// encoders write by default — cannot be decoded from a pipe, since the mov
// demuxer must seek back to the samples; over a pipe ffmpeg even exits 0
// with no audio. With file: the demuxer allowlist is what keeps other files
// out, and none of the allowed demuxers opens one.
func inputArgs(path string, demuxers ...string) []string {
	return []string{"-protocol_whitelist", "file", "-format_whitelist", strings.Join(demuxers, ","), "-i", "file:" + path}
}

// Info is what a probe tells.
type Info struct {
	// Claimed is the duration the container states: a claim that may be a
	// lie. It may refuse a file early (it already says it is too long) but
	// never accept one; Normalize counts what is really there.
	Claimed    time.Duration
	HasAudio   bool
	Title      string
	FormatName string
}

type probeOutput struct {
	Streams []struct {
		CodecType string            `json:"codec_type"`
		Duration  string            `json:"duration"`
		Tags      map[string]string `json:"tags"` // Ogg keeps its comments here
	} `json:"streams"`
	Format struct {
		FormatName string            `json:"format_name"`
		Duration   string            `json:"duration"`
		Tags       map[string]string `json:"tags"`
	} `json:"format"`
}

const (
	stderrLimit = 4096
	// probeOutputLimit bounds what is read of ffprobe's report: only a few
	// fields are asked for, so anything near this is a file built to flood.
	probeOutputLimit = 1 << 20
)

// Probe inspects path. A file ffprobe cannot read (or not as one of the
// allowed demuxers), one without an audio stream, or one whose report
// exceeds 1 MiB is not_media; an empty file is empty_media.
func (t *Tool) Probe(ctx context.Context, path string) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("probe: %w", err)
	}
	if st.Size() == 0 {
		return Info{}, job.Errorf(job.CodeEmptyMedia, "the downloaded file is empty")
	}
	args := []string{"-v", "error", "-print_format", "json", "-select_streams", "a",
		"-show_entries", "format=format_name,duration:format_tags=title:stream=codec_type,duration:stream_tags=title"}
	cmd := proc.Command(ctx, proc.DefaultGrace, t.cfg.FFprobe, append(args, inputArgs(path, Demuxers...)...)...)
	stdout := &capped{max: probeOutputLimit}
	stderr := &limited{max: stderrLimit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	switch {
	case stdout.over:
		return Info{}, &job.Error{Code: job.CodeNotMedia, Message: "the file's metadata is too large to inspect",
			Err: fmt.Errorf("ffprobe wrote more than %d bytes", probeOutputLimit)}
	case err != nil && ctx.Err() != nil:
		return Info{}, ctx.Err()
	case err != nil:
		return Info{}, &job.Error{Code: job.CodeNotMedia, Message: "the file is not audio or video that can be decoded",
			Err: fmt.Errorf("ffprobe: %w: %s", err, stderr.String())}
	}
	var out probeOutput
	if err := json.Unmarshal(stdout.buf.Bytes(), &out); err != nil {
		return Info{}, fmt.Errorf("parse ffprobe output: %w", err)
	}
	info := Info{FormatName: out.Format.FormatName, Title: title(out.Format.Tags)}
	d := seconds(out.Format.Duration)
	for _, s := range out.Streams {
		if s.CodecType == "audio" {
			info.HasAudio = true
			d = max(d, seconds(s.Duration))
			if info.Title == "" {
				info.Title = title(s.Tags)
			}
		}
	}
	info.Claimed = d
	if !info.HasAudio {
		return info, job.Errorf(job.CodeNotMedia, "the file has no audio stream")
	}
	// No claimed length (a browser's MediaRecorder WebM states none) is not
	// an empty file: Normalize counts the samples.
	return info, nil
}

func title(tags map[string]string) string {
	for k, v := range tags {
		if strings.EqualFold(k, "title") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func seconds(s string) time.Duration {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > float64(1<<62)/float64(time.Second) {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// maxWAVData is the most a RIFF size field can state: about 37 hours of
// 16 kHz mono audio.
const maxWAVData = 0xffffffff - 36

// Normalize decodes the first audio stream of in to a 16 kHz mono s16le WAV
// at out and returns its length, counted in samples — the only length that
// counts. ffmpeg writes raw samples to a pipe and Normalize writes them to
// out, so the count is exact whatever timestamps the file carries. With
// limit > 0, ffmpeg stops at limit plus a second (-t) and out never holds
// more than that, so a file lying about its length cannot fill the disk;
// decoded audio longer than limit fails too_long. No audio at all is
// empty_media.
func (t *Tool) Normalize(ctx context.Context, in, out string, limit time.Duration) (time.Duration, error) {
	maxBytes := int64(maxWAVData)
	args := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error"}, inputArgs(in, Demuxers...)...)
	args = append(args, "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", strconv.Itoa(wav.SampleRate), "-c:a", "pcm_s16le")
	if limit > 0 {
		bound := limit + time.Second
		args = append(args, "-t", strconv.FormatFloat(bound.Seconds(), 'f', -1, 64))
		maxBytes = min(maxBytes, wav.DataBytes(bound))
	}
	args = append(args, "-f", "s16le", "pipe:1")

	f, err := os.Create(out)
	if err != nil {
		return 0, fmt.Errorf("create audio file: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, wav.HeaderSize)); err != nil {
		return 0, fmt.Errorf("write audio file: %w", err)
	}
	body := &capped{w: f, max: maxBytes}
	stderr := &limited{max: stderrLimit}
	cmd := proc.Command(ctx, proc.DefaultGrace, t.cfg.FFmpeg, args...)
	cmd.Stdout, cmd.Stderr = body, stderr
	runErr := cmd.Run()
	switch {
	case body.over:
		// ffmpeg wrote past the bound (-t did not hold: timestamps can lie
		// too) and was cut off by a closed pipe.
	case runErr != nil && ctx.Err() != nil:
		return 0, ctx.Err()
	case body.err != nil:
		return 0, fmt.Errorf("write audio file: %w", body.err)
	case runErr != nil:
		return 0, &job.Error{Code: job.CodeTranscodeFailed, Message: "the audio could not be converted",
			Err: fmt.Errorf("ffmpeg: %w: %s", runErr, stderr.String())}
	}
	n := body.n &^ 1
	if err := finishWAV(f, n); err != nil {
		return 0, fmt.Errorf("write audio file: %w", err)
	}
	d := wav.DataDuration(n)
	switch {
	case body.over || (limit > 0 && d > limit):
		return d, job.Errorf(job.CodeTooLong, "the audio is longer than the %s maximum", limit)
	case n == 0:
		return 0, job.Errorf(job.CodeEmptyMedia, "the file holds no audio")
	}
	return d, nil
}

// finishWAV trims f to the header and n bytes of samples and writes the
// header that states them.
func finishWAV(f *os.File, n int64) error {
	if err := f.Truncate(wav.HeaderSize + n); err != nil {
		return err
	}
	if _, err := f.WriteAt(wav.Header(n), 0); err != nil {
		return err
	}
	return f.Close()
}

// errOver stops a tool whose output passed its bound: the failed write
// closes the pipe and the tool dies of it.
var errOver = errors.New("output over its bound")

// capped passes at most max bytes on to w (or keeps them, with w nil) and
// fails the write that would pass the bound.
type capped struct {
	w    io.Writer
	buf  bytes.Buffer
	max  int64
	n    int64
	over bool
	err  error // w's own failure
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - c.n
	fits := p[:min(int64(len(p)), max(room, 0))]
	var n int
	if c.w == nil {
		n, _ = c.buf.Write(fits)
	} else {
		var err error
		if n, err = c.w.Write(fits); err != nil {
			c.n += int64(n)
			c.err = err
			return n, err
		}
	}
	c.n += int64(n)
	if len(fits) < len(p) {
		c.over = true
		return n, errOver
	}
	return n, nil
}

// limited keeps the first max bytes written to it: enough of a tool's stderr
// to explain a failure, never a flood.
type limited struct {
	buf bytes.Buffer
	max int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limited) String() string { return strings.TrimSpace(l.buf.String()) }
