// Package idempotency holds what the edge and core must agree on about the
// Idempotency-Key (IETF draft "The Idempotency-Key HTTP Header Field"): which
// keys are valid, and the fingerprint that says whether a retry carries the
// same request.
package idempotency

import (
	"crypto/sha256"

	"google.golang.org/protobuf/proto"
)

// MaxKeyLen is the longest key accepted (Stripe's limit, too).
const MaxKeyLen = 255

// ValidKey reports whether k is 1 to 255 printable ASCII characters.
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// Fingerprint is the SHA-256 of a request's parameters — a job's, a
// batch's — its idempotency_key field left out: two requests with one key
// and one fingerprint are the same request.
func Fingerprint(m proto.Message) []byte {
	c := proto.Clone(m).ProtoReflect()
	if f := c.Descriptor().Fields().ByName("idempotency_key"); f != nil {
		c.Clear(f)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.Interface())
	if err != nil { // a well-formed message always marshals
		panic(err)
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
