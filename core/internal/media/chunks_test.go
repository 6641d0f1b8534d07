package media

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/wav"
)

func TestCutPointsPreferSilences(t *testing.T) {
	t.Parallel()
	s := func(a, b float64) Span {
		return Span{time.Duration(a * float64(time.Second)), time.Duration(b * float64(time.Second))}
	}
	sec := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
	require.Empty(t, CutPoints(sec(9), sec(10), nil), "short audio is one chunk")
	require.Equal(t, []time.Duration{sec(10), sec(20)}, CutPoints(sec(25), sec(10), nil), "no pause: cut at the limit")
	require.Equal(t, []time.Duration{sec(8.5), sec(17)}, CutPoints(sec(25), sec(10), []Span{s(3, 3.4), s(8, 9), s(16.5, 17.5), s(30, 31)}),
		"the middle of the last silence before each limit")
	require.Equal(t, []time.Duration{sec(10)}, CutPoints(sec(15), sec(10), []Span{s(0.5, 1.5)}), "never a sliver of a chunk")
	got := CutPoints(sec(25), sec(10), []Span{{Start: sec(8) + 123_456, End: sec(9) + 777}})
	for _, c := range got {
		require.Zero(t, c%time.Millisecond, "whole milliseconds")
	}
}

// TestSilencesAndSplitWAV: a tone, a second of silence, a tone — through
// ffmpeg's silencedetect and a byte-exact split.
func TestSilencesAndSplitWAV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.wav")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=16000",
		"-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=1",
		"-f", "lavfi", "-i", "sine=frequency=660:duration=2:sample_rate=16000",
		"-filter_complex", "[0][1][2]concat=n=3:v=0:a=1", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", in)

	spans, err := New(Config{}).Silences(context.Background(), in)
	require.NoError(t, err)
	require.Len(t, spans, 1, "%v", spans)
	require.InDelta(t, 2.0, spans[0].Start.Seconds(), 0.05)
	require.InDelta(t, 3.0, spans[0].End.Seconds(), 0.05)

	cuts := CutPoints(5*time.Second, 3*time.Second, spans)
	require.Len(t, cuts, 1)
	paths, err := SplitWAV(in, dir, cuts)
	require.NoError(t, err)
	require.Len(t, paths, 2)
	orig, err := os.ReadFile(in)
	require.NoError(t, err)
	f, err := os.Open(in)
	require.NoError(t, err)
	start, n, err := wav.FindData(f)
	f.Close()
	require.NoError(t, err)
	var joined []byte
	for i, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.Equal(t, "RIFF", string(b[:4]))
		joined = append(joined, b[44:]...)
		info, err := New(Config{}).Probe(context.Background(), p)
		require.NoError(t, err, "chunk %d is a valid WAV", i)
		require.True(t, info.HasAudio)
	}
	require.True(t, bytes.Equal(orig[start:start+n], joined), "the chunks are the samples, in order, byte for byte")
	b0, _ := os.ReadFile(paths[0])
	require.Equal(t, cuts[0].Milliseconds()*16*2, int64(len(b0)-44), "chunk 1 starts at sample cut×16")
}
