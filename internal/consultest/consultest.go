// Package consultest is a stand-in for Consul's HTTP API in tests: the parts
// ytcaption uses, as Consul's documentation describes them — agent service
// registration and deregistration, blocking health queries answered with
// X-Consul-Index, and blocking KV prefix lists. Consul cannot run on the build machines, so tests using it
// check the documented wire format.
package consultest

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fake is a running stand-in.
type Fake struct {
	srv *httptest.Server

	mu         sync.Mutex
	index      uint64
	instances  map[string][]string // service → "host:port" of its healthy instances
	changed    chan struct{}
	registered map[string]map[string]any
	removed    []string
	indexes    []string // the index= of each health query
	kv         map[string]string
}

// Start runs a stand-in until the test ends.
func Start(t testing.TB) *Fake {
	f := &Fake{index: 1, instances: map[string][]string{}, changed: make(chan struct{}), registered: map[string]map[string]any{},
		kv: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/agent/service/register", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, _ := body["ID"].(string)
		f.mu.Lock()
		f.registered[id] = body
		f.mu.Unlock()
	})
	mux.HandleFunc("PUT /v1/agent/service/deregister/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.removed = append(f.removed, r.PathValue("id"))
		f.mu.Unlock()
	})
	mux.HandleFunc("GET /v1/health/service/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("passing") != "1" {
			http.Error(w, "ytcaption asks for passing instances only", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.indexes = append(f.indexes, r.URL.Query().Get("index"))
		f.mu.Unlock()
		if !f.wait(r) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []map[string]any{}
		for _, a := range f.instances[r.PathValue("name")] {
			host, p, _ := net.SplitHostPort(a)
			port, _ := strconv.Atoi(p)
			out = append(out, map[string]any{"Node": map[string]any{"Address": "10.0.0.9"}, "Service": map[string]any{"Address": host, "Port": port}})
		}
		w.Header().Set("X-Consul-Index", strconv.FormatUint(f.index, 10))
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.URL.Query()["recurse"]; !ok {
			http.Error(w, "ytcaption lists prefixes only (?recurse)", http.StatusBadRequest)
			return
		}
		if !f.wait(r) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []map[string]any{}
		for k, v := range f.kv {
			if strings.HasPrefix(k, r.PathValue("key")) {
				out = append(out, map[string]any{"Key": k, "Value": base64.StdEncoding.EncodeToString([]byte(v)), "ModifyIndex": f.index})
			}
		}
		w.Header().Set("X-Consul-Index", strconv.FormatUint(f.index, 10))
		if len(out) == 0 {
			w.WriteHeader(http.StatusNotFound) // Consul's answer for an empty prefix
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// wait is a blocking query's wait: with ?index= equal to the current index,
// until something changes (or 30 s). It reports false when the client left.
func (f *Fake) wait(r *http.Request) bool {
	idx, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	f.mu.Lock()
	ch := f.changed
	block := idx != 0 && idx == f.index
	f.mu.Unlock()
	if !block {
		return true
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
	case <-r.Context().Done():
		return false
	}
	return true
}

// PutKV sets key to value at Consul index index ("" deletes it), waking
// blocked queries. An index lower than the last is a restored snapshot.
func (f *Fake) PutKV(index uint64, key, value string) {
	f.mu.Lock()
	if value == "" {
		delete(f.kv, key)
	} else {
		f.kv[key] = value
	}
	f.index = index
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Addr is the stand-in's host:port, as a Consul client is given it.
func (f *Fake) Addr() string { return f.srv.Listener.Addr().String() }

// Close stops answering: Consul is down.
func (f *Fake) Close() { f.srv.Close() }

// Set makes instances the healthy ones of ytcaption-core at Consul index
// index, waking blocked queries.
func (f *Fake) Set(index uint64, instances ...string) {
	f.SetService("ytcaption-core", index, instances...)
}

// SetService is Set for any service.
func (f *Fake) SetService(service string, index uint64, instances ...string) {
	f.mu.Lock()
	f.index, f.instances[service] = index, instances
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Registered is the registration of service id as sent (nil: none).
func (f *Fake) Registered(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registered[id]
}

// RegisteredService is the first registration of a service named name
// (nil: none).
func (f *Fake) RegisteredService(name string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.registered {
		if r["Name"] == name {
			return r
		}
	}
	return nil
}

// Removed lists the deregistered service ids.
func (f *Fake) Removed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.removed...)
}

// Indexes lists the index= each health query waited on ("" for none).
func (f *Fake) Indexes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.indexes...)
}
