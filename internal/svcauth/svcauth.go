// Package svcauth is how ytcaption's own services authenticate to each other:
// a bearer token on every request (the edge's service token, a gpu-node's node
// token) and, from the edge, the id of the user it has already authenticated.
package svcauth

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// UserHeader carries the authenticated user's id from the edge to core. Core
// believes it only on requests that also carry the edge's service token.
const UserHeader = "Ytcaption-User-Id"

// Transport adds "Authorization: Bearer <Token>" to every request. It sits under
// the Connect client so unary and streaming calls are covered alike.
type Transport struct {
	Base  http.RoundTripper // nil means http.DefaultTransport
	Token string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.Token)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// Bearer returns the token of an "Authorization: Bearer" header, or "".
func Bearer(h http.Header) string {
	v := h.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// Equal compares a presented token with the expected one in constant time. An
// empty expected token never matches, so an unset secret cannot open a door.
func Equal(presented, expected string) bool {
	return expected != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(expected)) == 1
}
