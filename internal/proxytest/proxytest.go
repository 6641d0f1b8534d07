// Package proxytest stands in for an outbound proxy in tests: a plain-HTTP
// forward proxy, which the egress proxy asks in absolute form.
package proxytest

import (
	"context"
	"io"
	"net/http"
)

// Forward forwards an absolute-form request and copies the answer back.
func Forward(w http.ResponseWriter, r *http.Request) {
	out, err := http.DefaultTransport.RoundTrip(r.Clone(context.WithoutCancel(r.Context())))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer out.Body.Close()
	for k, v := range out.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(out.StatusCode)
	_, _ = io.Copy(w, out.Body)
}
