// Package connectlimit bounds what a Connect handler inflates before it
// knows who is calling. connect-go reads a unary request and, when it says
// gzip, inflates it before any interceptor runs; WithReadMaxBytes caps the
// message, but connect-go's own gzip keeps inflating a refused message to
// the end to report its size — a gigabyte of work for a megabyte sent. The
// decompressor here stops the moment a message passes its cap.
package connectlimit

import (
	"compress/gzip"
	"fmt"
	"io"

	"connectrpc.com/connect"
)

// Ratio is how many times its compressed size a message may inflate to,
// above the floor. Every honest message bigger than the floor is an upload —
// audio or video, which gzip shrinks by 1.0–1.3× — while a gzip bomb inflates
// a thousandfold. Memory is what this buys: connect-go inflates into a buffer
// that doubles as it fills, so a refused message may hold about twice its
// cap; at 4, four 1.08 MB bombs held 68 MB in the edge, at 2 about half.
const Ratio = 2

// Options caps a handler's messages at limit bytes, inflated, and a
// compressed message at Ratio times its compressed size, never below floor
// (nor above limit).
func Options(limit, floor int) connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithReadMaxBytes(limit),
		connect.WithCompression("gzip",
			func() connect.Decompressor { return &Gzip{limit: int64(limit), floor: int64(min(floor, limit))} },
			func() connect.Compressor { return gzip.NewWriter(io.Discard) }),
	)
}

// Gzip inflates a compressed message to at most its cap and fails with
// resource_exhausted at once past it.
type Gzip struct {
	gz           gzip.Reader
	limit, floor int64
	cap, read    int64
}

// Reset implements connect.Decompressor.
func (z *Gzip) Reset(r io.Reader) error {
	z.cap, z.read = z.limit, 0
	if b, ok := r.(interface{ Len() int }); ok { // connect-go hands over the whole compressed message
		z.cap = min(z.limit, max(z.floor, Ratio*int64(b.Len())))
	}
	return z.gz.Reset(r)
}

// Read implements io.Reader.
func (z *Gzip) Read(p []byte) (int, error) {
	if z.read > z.cap {
		return 0, z.tooLarge()
	}
	n, err := z.gz.Read(p)
	if z.read += int64(n); z.read > z.cap {
		return n, z.tooLarge()
	}
	return n, err
}

func (z *Gzip) tooLarge() error {
	return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("the compressed message inflates past %d bytes", z.cap))
}

// Close implements connect.Decompressor.
func (z *Gzip) Close() error { return z.gz.Close() }
