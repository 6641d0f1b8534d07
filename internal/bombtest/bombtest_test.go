package bombtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// TestGzipInflatesToWhatItSays: the bomb is small on the wire and inflates,
// as one stream, to exactly the size asked for — all zeros.
func TestGzipInflatesToWhatItSays(t *testing.T) {
	b := Gzip(64)
	if len(b) > 64*1100 { // about 1 KB a MiB
		t.Fatalf("64 MiB bomb is %d bytes on the wire", len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := zr.Read(buf)
		if bytes.IndexFunc(buf[:k], func(r rune) bool { return r != 0 }) >= 0 {
			t.Fatal("inflated to something other than zeros")
		}
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 64<<20 {
		t.Fatalf("inflated to %d bytes, want %d", n, 64<<20)
	}
}

// TestMemoryReadsThisProcess: the figures are there and the peak is at
// least the current size.
func TestMemoryReadsThisProcess(t *testing.T) {
	rss, peak := Memory(t, 0)
	if rss <= 0 || peak < rss {
		t.Fatalf("rss %d, peak %d", rss, peak)
	}
}
