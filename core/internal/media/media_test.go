package media

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

const clip = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-nostdin", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	require.NoError(t, err, string(out))
}

func TestProbeAndNormalizeCompressedSpeech(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tool := New(Config{})
	for _, tc := range []struct{ name, codec string }{{"clip.ogg", "libvorbis"}, {"clip.mp3", "libmp3lame"}, {"clip.m4a", "aac"}} {
		in := filepath.Join(dir, tc.name)
		ffmpeg(t, "-i", clip, "-c:a", tc.codec, "-metadata", "title=Sense and Sensibility", in)
		info, err := tool.Probe(context.Background(), in)
		require.NoError(t, err, tc.name)
		require.True(t, info.HasAudio)
		// MP3 and AAC pad to whole frames, so allow a little more than the clip.
		require.InDelta(t, 2.99, info.Claimed.Seconds(), 0.15, tc.name)
		require.Equal(t, "Sense and Sensibility", info.Title, tc.name)

		out := filepath.Join(dir, tc.name+".wav")
		d, err := tool.Normalize(context.Background(), in, out, time.Minute)
		require.NoError(t, err)
		require.InDelta(t, 2.99, d.Seconds(), 0.15, tc.name)
		hdr := make([]byte, 44)
		f, err := os.Open(out)
		require.NoError(t, err)
		_, err = f.Read(hdr)
		f.Close()
		require.NoError(t, err)
		require.Equal(t, "RIFF", string(hdr[0:4]))
		require.Equal(t, "WAVE", string(hdr[8:12]))
		require.Equal(t, uint16(1), binary.LittleEndian.Uint16(hdr[20:22]), "PCM")
		require.Equal(t, uint16(1), binary.LittleEndian.Uint16(hdr[22:24]), "mono")
		require.Equal(t, uint32(16000), binary.LittleEndian.Uint32(hdr[24:28]), "16 kHz")
		require.Equal(t, uint16(16), binary.LittleEndian.Uint16(hdr[34:36]), "16-bit")
		norm, err := tool.Probe(context.Background(), out)
		require.NoError(t, err)
		require.InDelta(t, d.Seconds(), norm.Claimed.Seconds(), 0.001, "the header states what was decoded")
	}
}

func TestBadMediaIsClassified(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text := filepath.Join(dir, "a.txt")
	require.NoError(t, os.WriteFile(text, []byte("this is not media\n"), 0o644))
	empty := filepath.Join(dir, "empty.ogg")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	garbage := filepath.Join(dir, "garbage.mp3")
	require.NoError(t, os.WriteFile(garbage, []byte{0xff, 0xfb, 0x00, 0x01, 0x02, 0x03, 0x04}, 0o644))
	video := filepath.Join(dir, "video.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5", "-pix_fmt", "yuv420p", video)

	tool := New(Config{})
	for path, code := range map[string]string{text: job.CodeNotMedia, empty: job.CodeEmptyMedia, garbage: job.CodeNotMedia, video: job.CodeNotMedia} {
		_, err := tool.Probe(context.Background(), path)
		require.Equal(t, code, job.CodeOf(err), "%s: %v", filepath.Base(path), err)
	}
	_, err := tool.Normalize(context.Background(), text, filepath.Join(dir, "out.wav"), time.Minute)
	require.Equal(t, job.CodeTranscodeFailed, job.CodeOf(err))
}

func TestNormalizeHonoursCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := filepath.Join(dir, "long.flac")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:duration=900", "-c:a", "flac", "-compression_level", "0", long)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := New(Config{}).Normalize(ctx, long, filepath.Join(dir, "out.wav"), time.Hour)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
