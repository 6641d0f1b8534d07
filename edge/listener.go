package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// patientListener keeps accepting through the errors that pass by
// themselves, as net/http's server does: fasthttp's Serve ends for good on
// any accept error but a timeout. Out of file descriptors (EMFILE) for a
// moment under a burst of connections, the single box's edge stopped
// serving while its listening socket stayed open, and every request after
// it hung until its client gave up (the edge benchmark's SQLite run, after
// its 1,000 creations a second).
type patientListener struct {
	net.Listener
	log *slog.Logger

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: a pause ends at once
}

func newPatientListener(ln net.Listener, log *slog.Logger) *patientListener {
	return &patientListener{Listener: ln, log: log, closed: make(chan struct{})}
}

// Longest and first pause after a passing accept error, net/http's.
const (
	firstAcceptPause = 5 * time.Millisecond
	maxAcceptPause   = time.Second
)

// Accept waits for the next connection, pausing (doubling from 5 ms to 1 s)
// after each error that passes, until one comes or the listener is closed.
func (l *patientListener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil || !passing(err) {
			return c, err
		}
		pause = min(max(2*pause, firstAcceptPause), maxAcceptPause)
		l.log.WarnContext(context.Background(), "accept failed; retrying", "err", err, "retry_in", pause)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and ends a pause in Accept.
func (l *patientListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// passing reports whether an accept error goes away by itself: the process
// or the system out of file descriptors or memory for sockets, which
// connections closing give back.
func passing(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
