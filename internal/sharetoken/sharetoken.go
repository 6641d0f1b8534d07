// Package sharetoken makes and checks the secrets of share links: 256 random
// bits, base64url without padding (43 characters). Core stores only a
// token's SHA-256, so a copy of the database opens no link; the edge and core
// both refuse a malformed token before anything looks it up, so a flood of
// junk costs no database query.
package sharetoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// NotFoundMessage is the one message of share_not_found, whoever says it:
// the edge for a malformed token, core for every other link that does not
// open, so no reply tells them apart.
const NotFoundMessage = "this share link does not exist, has expired or was revoked"

// Len is a token's length in characters: 32 bytes in base64url, unpadded.
const Len = 43

// New draws a token and returns it with its hash.
func New() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token)
}

// Hash is what core stores of a token and looks it up by.
func Hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Valid reports whether token has a token's form: Len characters of the
// base64url alphabet that decode to 32 bytes (the last character carries
// only 4 bits, so some spellings of it are not canonical and are refused
// too).
func Valid(token string) bool {
	if len(token) != Len {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil && len(b) == 32
}
