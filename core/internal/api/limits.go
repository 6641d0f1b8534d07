package api

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/internal/connectlimit"
)

// Request size limits. connect-go reads a unary request and, when it says
// gzip, inflates it before any interceptor runs — before the caller's token
// is checked — so these are what an anonymous request can cost: they hold
// for the inflated size, and for the bytes on the wire.
const (
	// MaxMessageBytes bounds every request but UploadJob's. The largest
	// legitimate ones are PushSegments: a gpu-node pushes a segment at a time,
	// but even a whole 10-minute chunk at once — 3,000 words of fast speech,
	// each with timings and a probability, about 30 bytes a word in protobuf
	// and 90 in JSON — is under 300 KB. 1 MiB leaves three times that.
	MaxMessageBytes = 1 << 20
	// MaxUploadMessageBytes bounds UploadJob's: the file (MaxUploadBytes)
	// plus its name, options and a prompt, with room to spare.
	MaxUploadMessageBytes = MaxUploadBytes + 64<<10
)

// bodyLimit holds one handler's requests to max bytes, inflated.
type bodyLimit struct{ max int64 }

// options caps the decoded message and stops inflating a compressed one at
// the cap (see connectlimit); a compressed message may inflate past
// MaxMessageBytes only to connectlimit.Ratio times its size. Nobody sends
// core compressed requests today — the edge and gpu-nodes send them plain —
// so this only ever meets attackers and future clients.
func (l bodyLimit) options() connect.HandlerOption {
	return connectlimit.Options(int(l.max), MaxMessageBytes)
}

// wrap checks the caller's token from the headers before connect-go reads
// the body — a request without one costs no body read at all — and caps the
// bytes on the wire too (compressed incompressible data is a little larger
// than the data, hence the slack). The handler's interceptor still runs the
// full authenticator (the admin API's role check reads the database).
func (l bodyLimit) wrap(h http.Handler, token authenticator) http.Handler {
	wire := l.max + l.max/64 + 4<<10
	errs := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := token(r.Context(), r.Header); err != nil && errs.IsSupported(r) {
			_ = errs.Write(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, wire)
		h.ServeHTTP(w, r)
	})
}
