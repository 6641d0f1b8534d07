package discovery

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/consultest"
	"github.com/ytcaption/ytcaption/internal/waittest"
)

func TestRegisterAndDeregisterWireFormat(t *testing.T) {
	f := consultest.Start(t)
	c, err := Client(f.Addr())
	require.NoError(t, err)
	dereg, err := Register(context.Background(), c, Service{Name: "ytcaption-core", ID: "core-1", Address: "10.0.0.5", Port: 8020, Check: "/health/ready"})
	require.NoError(t, err)
	reg := f.Registered("core-1")
	require.Equal(t, "ytcaption-core", reg["Name"])
	require.Equal(t, "10.0.0.5", reg["Address"])
	require.EqualValues(t, 8020, reg["Port"])
	check := reg["Check"].(map[string]any)
	require.Equal(t, "http://10.0.0.5:8020/health/ready", check["HTTP"])
	require.Equal(t, "10s", check["Interval"])
	require.Equal(t, "1m", check["DeregisterCriticalServiceAfter"], "a crashed instance does not linger")
	dereg()
	require.Equal(t, []string{"core-1"}, f.Removed())
}

func TestResolverFollowsBlockingQueriesWireFormat(t *testing.T) {
	f := consultest.Start(t)
	f.Set(5, "10.0.0.1:8020")
	c, err := Client(f.Addr())
	require.NoError(t, err)
	r := NewResolver(slog.New(slog.DiscardHandler), c, "ytcaption-core", "core.fallback:8020")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	require.Eventually(t, func() bool { return r.Addr() == "10.0.0.1:8020" }, 5*time.Second, 10*time.Millisecond)

	f.Set(7, "10.0.0.2:8020", "10.0.0.3:8020")
	require.Eventually(t, func() bool { a := r.Addr(); return a == "10.0.0.2:8020" || a == "10.0.0.3:8020" }, 5*time.Second, 10*time.Millisecond)
	seen := map[string]bool{r.Addr(): true, r.Addr(): true}
	require.Len(t, seen, 2, "instances in turn")

	f.Set(3, "10.0.0.4:8020") // the index went back: a new leader
	require.Eventually(t, func() bool { return r.Addr() == "10.0.0.4:8020" }, 5*time.Second, 10*time.Millisecond)
	f.Set(4) // no healthy instance
	require.Eventually(t, func() bool { return r.Addr() == "core.fallback:8020" }, 5*time.Second, 10*time.Millisecond)

	indexes := f.Indexes()
	// The first query does not block; each next one waits on the index Consul
	// returned; when it went back (7 → 3), the next starts over from 0.
	require.GreaterOrEqual(t, len(indexes), 5)
	require.Equal(t, []string{"", "5", "7", "", "3"}, indexes[:5])
}

func TestResolverFallsBackWhileConsulIsDown(t *testing.T) {
	f := consultest.Start(t)
	addr := f.Addr()
	f.Close()
	c, err := Client(addr)
	require.NoError(t, err)
	logged := make(chan string, 1)
	r := NewResolver(slog.New(messages(logged)), c, "ytcaption-core", "core.fallback:8020")
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); r.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	// Wait until a query has failed, not for a while: the fallback must hold
	// after a failure, not only before the first query.
	require.Equal(t, "consul health query", waittest.Recv(t, logged, 10*time.Second, "the resolver reported no failed query"))
	require.Equal(t, "core.fallback:8020", r.Addr())

	// The transport sends requests where the resolver says.
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("core")) }))
	defer backend.Close()
	r2 := NewResolver(slog.New(slog.DiscardHandler), c, "ytcaption-core", backend.Listener.Addr().String())
	hc := &http.Client{Transport: &Transport{Base: http.DefaultTransport, Resolver: r2}}
	resp, err := hc.Get("http://ytcaption-core/health/ready")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// messages is a log handler that sends each record's message to ch, dropping
// it when ch is full: tests wait on it for what the code reports.
type messages chan<- string

func (h messages) Enabled(context.Context, slog.Level) bool { return true }
func (h messages) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h messages) WithGroup(string) slog.Handler            { return h }
func (h messages) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r.Message:
	default:
	}
	return nil
}
