package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// exhaustedListener fails its first `fails` accepts as a process out of file
// descriptors does, then accepts as ln does.
type exhaustedListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *exhaustedListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestTheEdgeServesOnAfterRunningOutOfFileDescriptors: accepts that fail
// for want of file descriptors — a burst of connections, the single box's
// edge benchmark — are waited out. fasthttp alone stopped serving for good
// at the first, its socket left open, and every later request hung.
func TestTheEdgeServesOnAfterRunningOutOfFileDescriptors(t *testing.T) {
	t.Parallel()
	e, err := New(Config{CoreURL: "http://127.0.0.1:9", ServiceToken: token})
	require.NoError(t, err)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &exhaustedListener{Listener: tcp}
	ln.fails.Store(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, ln, nil) }()

	answered := make(chan error, 1)
	go func() {
		c := &http.Client{Timeout: time.Minute} // generous: the edge pauses 5+10+20 ms
		resp, err := c.Get("http://" + tcp.Addr().String() + "/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
		answered <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the edge stopped serving at a failed accept: %v", err)
	case err := <-answered:
		require.NoError(t, err, "a request after the failed accepts")
	}
	cancel()
	require.NoError(t, <-done)
}

// TestClosingThePatientListenerEndsItsPause: a shutdown while the listener
// waits out accept errors does not wait for the pause.
func TestClosingThePatientListenerEndsItsPause(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &exhaustedListener{Listener: tcp}
	ln.fails.Store(1 << 30) // never accepts: pauses reach their longest, 1 s
	pl := newPatientListener(ln, slog.New(slog.DiscardHandler))
	accepted := make(chan error, 1)
	go func() {
		_, err := pl.Accept()
		accepted <- err
	}()
	require.NoError(t, pl.Close())
	select {
	case err := <-accepted:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(time.Minute): // generous: a pause is 1 s at most
		t.Fatal("Accept still pauses after Close")
	}
}

// brokenListener fails every accept with an error that does not pass.
type brokenListener struct{ net.Listener }

var errBroken = errors.New("listener broken")

func (l brokenListener) Accept() (net.Conn, error) { return nil, errBroken }

// TestAFailedListenerStopsTheWholeEdge: when the REST listener fails for
// good, Serve returns its error with both listeners closed — neither the
// Connect front door serving on alone nor a REST socket left open that
// nobody accepts on, where requests hang (the single box then stops as a
// whole, and its supervisor restarts it).
func TestAFailedListenerStopsTheWholeEdge(t *testing.T) {
	t.Parallel()
	e, err := New(Config{CoreURL: "http://127.0.0.1:9", ServiceToken: token})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.ErrorIs(t, e.Serve(context.Background(), brokenListener{ln}, cln), errBroken)
	for name, addr := range map[string]string{"REST": ln.Addr().String(), "Connect front door": cln.Addr().String()} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("the %s listener still takes connections after Serve returned", name)
		}
	}
}
