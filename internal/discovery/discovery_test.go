package discovery

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeConsul answers the parts of Consul's HTTP API ytcaption uses, as its
// documentation describes them: agent service (de)registration and blocking
// health queries with X-Consul-Index. Consul cannot run here, so these tests
// check the documented wire format.
type fakeConsul struct {
	mu         sync.Mutex
	index      uint64
	instances  []string // "host:port"
	changed    chan struct{}
	registered map[string]any
	removed    []string
	indexes    []string // the index= of each health query
}

func newFakeConsul(t *testing.T) (*fakeConsul, *httptest.Server) {
	f := &fakeConsul{index: 5, changed: make(chan struct{}), registered: map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/agent/service/register", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		f.mu.Lock()
		f.registered[body["ID"].(string)] = body
		f.mu.Unlock()
	})
	mux.HandleFunc("PUT /v1/agent/service/deregister/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.removed = append(f.removed, r.PathValue("id"))
		f.mu.Unlock()
	})
	mux.HandleFunc("GET /v1/health/service/{name}", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "ytcaption-core", r.PathValue("name"))
		require.Equal(t, "1", r.URL.Query().Get("passing"), "only healthy instances")
		idx, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
		f.mu.Lock()
		f.indexes = append(f.indexes, r.URL.Query().Get("index"))
		ch := f.changed
		block := idx != 0 && idx == f.index
		f.mu.Unlock()
		if block { // a blocking query: answer when something changes
			select {
			case <-ch:
			case <-time.After(30 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		var out []map[string]any
		for _, a := range f.instances {
			host, p, _ := net.SplitHostPort(a)
			port, _ := strconv.Atoi(p)
			out = append(out, map[string]any{"Node": map[string]any{"Address": "10.0.0.9"}, "Service": map[string]any{"Address": host, "Port": port}})
		}
		w.Header().Set("X-Consul-Index", strconv.FormatUint(f.index, 10))
		_ = json.NewEncoder(w).Encode(out)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeConsul) set(index uint64, instances ...string) {
	f.mu.Lock()
	f.index, f.instances = index, instances
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func TestRegisterAndDeregisterWireFormat(t *testing.T) {
	f, srv := newFakeConsul(t)
	c, err := Client(srv.Listener.Addr().String())
	require.NoError(t, err)
	dereg, err := Register(context.Background(), c, Service{Name: "ytcaption-core", ID: "core-1", Address: "10.0.0.5", Port: 8020, Check: "/health/ready"})
	require.NoError(t, err)
	reg := f.registered["core-1"].(map[string]any)
	require.Equal(t, "ytcaption-core", reg["Name"])
	require.Equal(t, "10.0.0.5", reg["Address"])
	require.EqualValues(t, 8020, reg["Port"])
	check := reg["Check"].(map[string]any)
	require.Equal(t, "http://10.0.0.5:8020/health/ready", check["HTTP"])
	require.Equal(t, "10s", check["Interval"])
	require.Equal(t, "1m", check["DeregisterCriticalServiceAfter"], "a crashed instance does not linger")
	dereg()
	require.Equal(t, []string{"core-1"}, f.removed)
}

func TestResolverFollowsBlockingQueriesWireFormat(t *testing.T) {
	f, srv := newFakeConsul(t)
	f.set(5, "10.0.0.1:8020")
	c, err := Client(srv.Listener.Addr().String())
	require.NoError(t, err)
	r := NewResolver(slog.New(slog.DiscardHandler), c, "ytcaption-core", "core.fallback:8020")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	require.Eventually(t, func() bool { return r.Addr() == "10.0.0.1:8020" }, 5*time.Second, 10*time.Millisecond)

	f.set(7, "10.0.0.2:8020", "10.0.0.3:8020")
	require.Eventually(t, func() bool { a := r.Addr(); return a == "10.0.0.2:8020" || a == "10.0.0.3:8020" }, 5*time.Second, 10*time.Millisecond)
	seen := map[string]bool{r.Addr(): true, r.Addr(): true}
	require.Len(t, seen, 2, "instances in turn")

	f.set(3, "10.0.0.4:8020") // the index went back: a new leader
	require.Eventually(t, func() bool { return r.Addr() == "10.0.0.4:8020" }, 5*time.Second, 10*time.Millisecond)
	f.set(4) // no healthy instance
	require.Eventually(t, func() bool { return r.Addr() == "core.fallback:8020" }, 5*time.Second, 10*time.Millisecond)

	f.mu.Lock()
	indexes := append([]string(nil), f.indexes...)
	f.mu.Unlock()
	// The first query does not block; each next one waits on the index Consul
	// returned; when it went back (7 → 3), the next starts over from 0.
	require.GreaterOrEqual(t, len(indexes), 5)
	require.Equal(t, []string{"", "5", "7", "", "3"}, indexes[:5])
}

func TestResolverFallsBackWhileConsulIsDown(t *testing.T) {
	_, srv := newFakeConsul(t)
	addr := srv.Listener.Addr().String()
	srv.Close()
	c, err := Client(addr)
	require.NoError(t, err)
	r := NewResolver(slog.New(slog.DiscardHandler), c, "ytcaption-core", "core.fallback:8020")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	time.Sleep(100 * time.Millisecond)
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
