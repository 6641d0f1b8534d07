package ytdlp

import (
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// checkCaptions holds what every parse promises, whatever the file: settled
// segments (checkSettled) at non-negative times and in order, text that is
// valid UTF-8 on one line, and output no bigger than the input allows.
func checkCaptions(t *testing.T, in []byte, segs []job.Segment) {
	t.Helper()
	checkSettled(t, segs)
	require.LessOrEqual(t, len(segs), len(in), "more segments than input bytes")
	textBytes, words := 0, 0
	for i, s := range segs {
		require.GreaterOrEqual(t, s.StartMS, int64(0), "segment %d starts before 0", i)
		if i > 0 {
			require.GreaterOrEqual(t, s.StartMS, segs[i-1].StartMS, "segment %d starts before the one before", i)
		}
		require.NotEmpty(t, s.Text, "segment %d", i)
		require.True(t, utf8.ValidString(s.Text), "segment %d text %q", i, s.Text)
		require.Equal(t, strings.Join(strings.Fields(s.Text), " "), s.Text, "segment %d: one line, single spaces", i)
		textBytes += len(s.Text)
		for _, w := range s.Words {
			require.True(t, utf8.ValidString(w.Text), "word %q", w.Text)
			require.NotEmpty(t, w.Text)
			textBytes += len(w.Text)
			words++
		}
	}
	// Each input byte yields at most a few bytes of text — a replaced invalid
	// byte is 3 — counted once in a segment and once in its words.
	require.LessOrEqual(t, textBytes, 6*len(in), "text grew beyond the input")
	require.LessOrEqual(t, words, len(in), "more words than input bytes")
}

func FuzzParseJSON3(f *testing.F) {
	for _, name := range []string{"testdata/auto.en.json3", "testdata/manual.en.json3"} {
		b, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"events":[{"tStartMs":10,"dDurationMs":-5,"segs":[{"utf8":"back"}]},{"tStartMs":0,"dDurationMs":1,"segs":[{"utf8":"wards"}]}]}`))
	f.Add([]byte(`{"events":[{"tStartMs":-9223372036854775808,"dDurationMs":9223372036854775807,"segs":[{"utf8":"a","tOffsetMs":-1},{"utf8":" b","tOffsetMs":9223372036854775807}]}]}`))
	f.Add([]byte(`{"events":[{"tStartMs":1,"aAppend":1,"segs":[{"utf8":"\n"}]},{"tStartMs":2,"segs":[{"utf8":"\u0000\ud800 x\u2028y"}]}]}`))
	f.Add([]byte(`{"events":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		segs, err := ParseJSON3(b)
		if err != nil {
			require.Empty(t, segs)
			return
		}
		checkCaptions(t, b, segs)
	})
}

func FuzzParseVTT(f *testing.F) {
	b, err := os.ReadFile("testdata/auto.en.vtt")
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte("WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n\n00:00:00.000 --> 00:00:00.500\nearlier\n"))
	f.Add([]byte("WEBVTT\n\n99999999999999999999:00:00.000 --> 9223372036854775807:59:59.999\nhuge\n\n00:01.000 --> 00:02.000\n<c.x>a</c> &lt;b&gt; --&gt; \xff\xfe c\r\n\r\n"))
	f.Add([]byte("WEBVTT\r\n\r\nNOTE x\r\n\r\n1\r\n00:00:01.000 --> 00:00:02.000 line:0\r\n<v Bob>hi</v>\r\n \r\nthere\r\n"))
	f.Add([]byte("00:00:01.000-->00:00:02.000\na\n00:00:01.500 --> 00:00:03.000\na\nb\n"))
	f.Add(longCues(2000))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkCaptions(t, b, ParseVTT(b))
	})
}

// longCues is a caption file of two cues of n lines each, the second
// repeating all but the last line of the first: the worst case for finding
// a rolling cue's repeated lines.
func longCues(n int) []byte {
	var b strings.Builder
	b.WriteString("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n")
	b.WriteString(strings.Repeat("a\n", n) + "x\n\n00:00:02.000 --> 00:00:03.000\n")
	b.WriteString(strings.Repeat("a\n", n))
	return []byte(b.String())
}

// BenchmarkParseVTTLongCues reports ParseVTT's time per line on files of
// long cues, and how that grows from 8,000 to 32,000 lines a cue: near 1 is
// linear, near 4 quadratic. (Comparing every suffix of a cue with every
// prefix of the next was quadratic: a 128 KB file took a second, a megabyte
// a minute.)
func BenchmarkParseVTTLongCues(b *testing.B) {
	small, large := longCues(8000), longCues(32000)
	var ts, tl time.Duration
	for b.Loop() {
		t0 := time.Now()
		ParseVTT(small)
		t1 := time.Now()
		ParseVTT(large)
		ts, tl = ts+t1.Sub(t0), tl+time.Since(t1)
	}
	b.ReportMetric(float64(tl.Nanoseconds())/float64(b.N)/64000, "ns/line")
	b.ReportMetric(float64(tl)/float64(ts)/4, "growth")
}
