// Package bombtest makes the decompression bombs that tests of every door
// send, and reads what a process paid for them in memory.
package bombtest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// member is one gzip member holding 1 MiB of zeros (about 1 KB).
var member = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, 1<<20))
	_ = zw.Close()
	return b.Bytes()
})

// Gzip is a gzip stream that inflates to mib MiB of zeros: about 1 KB on
// the wire per MiB, made without ever holding the inflated bytes. It is one
// member repeated; gzip readers (Go's, zlib's, fasthttp's) read concatenated
// members as one stream, as RFC 1952 asks.
func Gzip(mib int) []byte {
	return bytes.Repeat(member(), mib)
}

// Memory is a process's resident set now and at its peak (VmRSS and VmHWM
// in /proc/PID/status), in bytes; pid 0 is this process.
func Memory(t testing.TB, pid int) (rss, peak int64) {
	t.Helper()
	name := "/proc/self/status"
	if pid != 0 {
		name = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("reading the process's memory: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		t.Fatalf("no VmRSS or VmHWM in %s", name)
	}
	return rss, peak
}
