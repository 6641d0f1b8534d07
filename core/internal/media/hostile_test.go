package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/wav"
)

// lyingMKV writes a Matroska file holding seconds of audio whose header
// claims one second: ffmpeg's muxer writes the true length, then the
// Segment Info Duration element (ID 0x4489, an 8-byte float of
// milliseconds) and the track's DURATION tag are patched to 1 s.
func lyingMKV(t *testing.T, path string, seconds int) {
	t.Helper()
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration="+strconv.Itoa(seconds),
		"-c:a", "libvorbis", "-f", "matroska", path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.Index(b, []byte{0x44, 0x89, 0x88})
	require.GreaterOrEqual(t, i, 0, "no 8-byte Duration element")
	require.InDelta(t, float64(seconds)*1000, math.Float64frombits(binary.BigEndian.Uint64(b[i+3:])), 100)
	binary.BigEndian.PutUint64(b[i+3:], math.Float64bits(1000))
	if j := bytes.Index(b, []byte("00:0")); j >= 0 && j+18 <= len(b) { // the DURATION tag, HH:MM:SS.nnnnnnnnn
		copy(b[j:], "00:00:01.000000000")
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// wavData is the number of sample bytes a WAV holds, by its header and by
// its size, which must agree.
func wavData(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	start, n, err := wav.FindData(f)
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	require.Equal(t, st.Size(), start+n, "header and file agree")
	return n
}

// TestLyingContainerIsMeasuredByItsSamples: the case. A Matroska
// file that claims 1 s and holds 150 s passes no limit of 60 s, and the WAV
// written for it stops at 61 s; under a 300 s limit its length is 150 s, as
// decoded, not the 1 s it claims.
func TestLyingContainerIsMeasuredByItsSamples(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lying := filepath.Join(dir, "lying.mkv")
	lyingMKV(t, lying, 150)
	tool := New(Config{})
	info, err := tool.Probe(context.Background(), lying)
	require.NoError(t, err)
	require.InDelta(t, 1.0, info.Claimed.Seconds(), 0.05, "the container must claim 1 s, or the test proves nothing")

	out := filepath.Join(dir, "short.wav")
	d, err := tool.Normalize(context.Background(), lying, out, 60*time.Second)
	require.Equal(t, job.CodeTooLong, job.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "longer than the 1m0s maximum")
	n := wavData(t, out)
	require.LessOrEqual(t, n, int64(61*wav.SampleRate*wav.BytesPerSample), "the WAV stops at the limit plus a second")
	require.InDelta(t, 61.0, d.Seconds(), 0.1)

	out = filepath.Join(dir, "whole.wav")
	d, err = tool.Normalize(context.Background(), lying, out, 300*time.Second)
	require.NoError(t, err)
	require.InDelta(t, 150.0, d.Seconds(), 0.1, "the decoded length, not the claim")
	got, err := wav.Duration(out)
	require.NoError(t, err)
	require.Equal(t, d, got, "the returned length is the WAV's")
}

// TestNormalizeCountsSamplesExactly: the length is samples / 16000 to the
// nanosecond, and a file just over the limit fails.
func TestNormalizeCountsSamplesExactly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.flac")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=2.5", "-c:a", "flac", in)
	tool := New(Config{})
	d, err := tool.Normalize(context.Background(), in, filepath.Join(dir, "a.wav"), 3*time.Second)
	require.NoError(t, err)
	require.Equal(t, 2500*time.Millisecond, d)
	_, err = tool.Normalize(context.Background(), in, filepath.Join(dir, "b.wav"), 2*time.Second)
	require.Equal(t, job.CodeTooLong, job.CodeOf(err), "%v", err)

	silent := filepath.Join(dir, "nothing.ogg")
	ffmpeg(t, "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0", "-c:a", "libvorbis", silent)
	_, err = tool.Normalize(context.Background(), silent, filepath.Join(dir, "c.wav"), time.Minute)
	require.Contains(t, []string{job.CodeEmptyMedia, job.CodeTranscodeFailed}, job.CodeOf(err), "%v", err)
}

// secretTS writes an MPEG-TS file of speech (flite's "secret words"), the
// local file an attacker's playlist names.
func secretTS(t *testing.T, dir string) string {
	t.Helper()
	speech := filepath.Join(dir, "speech.wav")
	if out, err := exec.Command("flite", "-voice", "slt", "-t", "secret words", "-o", speech).CombinedOutput(); err != nil {
		t.Logf("flite unavailable (%v: %s): a tone stands in for speech", err, out)
		ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=880:duration=3", speech)
	}
	ts := filepath.Join(dir, "secret.ts")
	ffmpeg(t, "-i", speech, "-c:a", "mp2", "-f", "mpegts", ts)
	return ts
}

// TestPlaylistsAndScriptsOpenNothing: the case. An HLS playlist and
// an ffconcat script naming a local file, saved under honest and innocent
// names: an unrestricted ffprobe reads the secret through them (shown first,
// so the test proves something), Probe and Normalize refuse them and decode
// nothing.
func TestPlaylistsAndScriptsOpenNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := secretTS(t, dir)
	attacks := map[string]string{
		"hls-absolute": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\nfile://" + secret + "\n#EXT-X-ENDLIST\n",
		"hls-relative": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:3.0,\nsecret.ts\n#EXT-X-ENDLIST\n",
		"ffconcat":     "ffconcat version 1.0\nfile secret.ts\n",
	}
	for name, body := range attacks {
		ext := ".m3u8"
		if name == "ffconcat" {
			ext = ".ffconcat"
		}
		for _, file := range []string{name + ext, name + "-innocent.bin", name + "-song.mp3"} {
			path := filepath.Join(dir, file)
			require.NoError(t, os.WriteFile(path, []byte(body), 0o644))

			var stderr bytes.Buffer
			cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", "file:"+path, "-ac", "1", "-ar", "16000", "-f", "s16le", "pipe:1")
			cmd.Stderr = &stderr
			plain, err := cmd.Output()
			require.NoError(t, err, "%s: unrestricted ffmpeg should decode the secret: %s", file, stderr.String())
			require.Greater(t, len(plain), wav.SampleRate*wav.BytesPerSample/2, "%s: the attack must work without the allowlist", file)

			_, err = New(Config{}).Probe(context.Background(), path)
			require.Equal(t, job.CodeNotMedia, job.CodeOf(err), "%s: %v", file, err)

			out := filepath.Join(dir, file+".wav")
			_, err = New(Config{}).Normalize(context.Background(), path, out, time.Minute)
			require.Equal(t, job.CodeTranscodeFailed, job.CodeOf(err), "%s: %v", file, err)
			require.Contains(t, err.Error(), "not on whitelist", "%s: refused by the allowlist", file)
			if st, err := os.Stat(out); err == nil {
				require.LessOrEqual(t, st.Size(), int64(wav.HeaderSize), "%s: no audio from the secret", file)
			}
		}
	}
}

// TestAllowedContainersStillDecode: what people upload decodes through the
// allowlist, including an MP4 whose moov atom comes after megabytes of media
// data (ffmpeg's default), which needs a seekable input.
func TestAllowedContainersStillDecode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := []string{"-f", "lavfi", "-i", "sine=frequency=440:duration=3"}
	for _, tc := range []struct {
		name string
		args []string
		secs float64
	}{
		{"a.ogg", []string{"-c:a", "libvorbis"}, 3},
		{"a.opus", []string{"-c:a", "libopus"}, 3},
		{"a.mp3", []string{"-c:a", "libmp3lame"}, 3},
		{"a.m4a", []string{"-c:a", "aac"}, 3},
		{"a.webm", []string{"-c:a", "libopus"}, 3},
		{"a.mka", []string{"-c:a", "flac"}, 3},
		{"a.flac", []string{"-c:a", "flac"}, 3},
		{"a.wav", []string{"-c:a", "pcm_s16le"}, 3},
		{"a.aac", []string{"-c:a", "aac", "-f", "adts"}, 3},
		{"a.wma", []string{"-c:a", "wmav2"}, 3},
		{"a.aiff", []string{"-c:a", "pcm_s16be"}, 3},
		{"a.ts", []string{"-c:a", "mp2"}, 3},
		{"a.ac3", []string{"-c:a", "ac3"}, 3},
		{"a.wv", []string{"-c:a", "wavpack"}, 3},
		{"a.caf", []string{"-c:a", "alac"}, 3},
		{"a.avi", []string{"-c:a", "libmp3lame"}, 3},
	} {
		in := filepath.Join(dir, tc.name)
		ffmpeg(t, append(append(append([]string(nil), src...), tc.args...), in)...)
		checkDecodes(t, in, tc.secs)
	}
	// Video with sound, and a long M4A with its moov at the end.
	video := filepath.Join(dir, "v.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=duration=3:size=64x64:rate=5", "-f", "lavfi", "-i", "sine=duration=3",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", video)
	checkDecodes(t, video, 3)
	long := filepath.Join(dir, "long.m4a")
	ffmpeg(t, "-f", "lavfi", "-i", "anoisesrc=duration=60:amplitude=0.3", "-ac", "2", "-c:a", "alac", long) // Apple Lossless: big, and fast to make
	b, err := os.ReadFile(long)
	require.NoError(t, err)
	require.Greater(t, bytes.Index(b, []byte("moov")), bytes.Index(b, []byte("mdat")), "moov after mdat")
	require.Greater(t, len(b), 5<<20, "more media data than ffmpeg's probe buffer, which would hide a pipe's lack of seeking")
	checkDecodes(t, long, 60)
}

func checkDecodes(t *testing.T, in string, secs float64) {
	t.Helper()
	tool := New(Config{})
	info, err := tool.Probe(context.Background(), in)
	require.NoError(t, err, filepath.Base(in))
	require.True(t, info.HasAudio)
	d, err := tool.Normalize(context.Background(), in, in+".wav", time.Hour)
	require.NoError(t, err, filepath.Base(in))
	require.InDelta(t, secs, d.Seconds(), 0.1, filepath.Base(in))
}

// TestProbeOutputIsBounded: a file whose title tag alone makes ffprobe's
// report 1.5 MB is not_media, not a buffer that grows with the file.
func TestProbeOutputIsBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	meta := filepath.Join(dir, "meta.txt")
	require.NoError(t, os.WriteFile(meta, []byte(";FFMETADATA1\ntitle="+strings.Repeat("A", 1500_000)+"\n"), 0o644))
	in := filepath.Join(dir, "tags.mka")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=1", "-i", meta, "-map", "0", "-map_metadata", "1", "-c:a", "libvorbis", in)
	_, err := New(Config{}).Probe(context.Background(), in)
	require.Equal(t, job.CodeNotMedia, job.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "too large")
}

// TestDemuxerAllowlist: every allowed demuxer exists in the installed
// ffmpeg, and none is one that opens other files or URLs.
func TestDemuxerAllowlist(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-demuxers").Output()
	require.NoError(t, err)
	installed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], "D") {
			for _, name := range strings.Split(f[1], ",") {
				installed[name] = true
			}
		}
	}
	for _, d := range Demuxers {
		require.True(t, installed[d], "%s is not a demuxer of this ffmpeg", d)
	}
	for _, bad := range []string{"hls", "dash", "concat", "image2", "image2pipe", "lavfi", "ffmetadata", "sdp", "rtsp",
		"rtp", "webm_dash_manifest", "imf", "mpl2", "tee", "data", "subfile", "libopenmpt", "libgme"} {
		require.NotContains(t, Demuxers, bad)
	}
}
