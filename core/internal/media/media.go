// Package media probes downloaded files with ffprobe and converts their audio,
// once, to what every engine takes: 16 kHz mono signed 16-bit WAV. ffmpeg only
// reads local files (protocol whitelist), so a crafted playlist inside a
// download cannot make it fetch anything.
package media

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/proc"
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

// Info is what a probe tells.
type Info struct {
	Duration   time.Duration
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

const stderrLimit = 4096

// Probe inspects path. A file ffprobe cannot read, or one without an audio
// stream, is not_media; an empty file or silence of no length is empty_media.
func (t *Tool) Probe(ctx context.Context, path string) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("probe: %w", err)
	}
	if st.Size() == 0 {
		return Info{}, job.Errorf(job.CodeEmptyMedia, "the downloaded file is empty")
	}
	cmd := proc.Command(ctx, proc.DefaultGrace, t.cfg.FFprobe, "-v", "error", "-print_format", "json",
		"-show_format", "-show_streams", "-select_streams", "a", "file:"+path)
	var stdout bytes.Buffer
	stderr := &limited{max: stderrLimit}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Info{}, ctx.Err()
		}
		return Info{}, &job.Error{Code: job.CodeNotMedia, Message: "the file is not audio or video that can be decoded",
			Err: fmt.Errorf("ffprobe: %w: %s", err, stderr.String())}
	}
	var out probeOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
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
	info.Duration = d
	if !info.HasAudio {
		return info, job.Errorf(job.CodeNotMedia, "the file has no audio stream")
	}
	if d <= 0 {
		return info, job.Errorf(job.CodeEmptyMedia, "the audio has no duration")
	}
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
	if err != nil || f < 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// Normalize converts the first audio stream of in to 16 kHz mono s16le WAV at out.
func (t *Tool) Normalize(ctx context.Context, in, out string) error {
	cmd := proc.Command(ctx, proc.DefaultGrace, t.cfg.FFmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
		"-protocol_whitelist", "file,pipe", "-i", "file:"+in,
		"-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-y", "file:"+out)
	stderr := &limited{max: stderrLimit}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &job.Error{Code: job.CodeTranscodeFailed, Message: "the audio could not be converted",
			Err: fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())}
	}
	return nil
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
