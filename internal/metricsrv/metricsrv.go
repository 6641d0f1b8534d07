// Package metricsrv serves Prometheus metrics on a listener of their own, the
// same way in every binary. Its clients are Prometheus and Consul's health
// checks, but anyone who reaches the port may call it: it answers GET on the
// metrics paths and nothing else, never reads a request body (not even to
// reuse the connection), bounds the headers and every phase of a connection,
// and holds concurrent scrapes to a few.
package metricsrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves g's metrics: at most 4 scrapes at once, each within 10 s.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Server returns the server for paths, each path's handler answering GET
// (and HEAD) only.
func Server(paths map[string]http.Handler) *http.Server {
	mux := http.NewServeMux()
	for p, h := range paths {
		mux.Handle("GET "+p, h)
	}
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength != 0 {
				// A body nobody reads: net/http would drain it to reuse the
				// connection; closing it reads none.
				w.Header().Set("Connection", "close")
			}
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// Start listens on addr and serves paths there (Server) in the background.
// It returns the address it listens on and stop, which shuts the listener
// down and returns what serving it came to.
func Start(ctx context.Context, addr string, paths map[string]http.Handler) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen %s for metrics: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, Server(paths), ln) }()
	return ln.Addr().String(), func() error { cancel(); return <-done }, nil
}

// Serve serves srv on ln until ctx ends, then shuts it down, giving scrapes
// in flight up to 5 s.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
