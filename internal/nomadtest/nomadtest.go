// Package nomadtest is a stand-in for the parts of Nomad's HTTP API that
// core uses — node list, a node's allocations, node drain — written from
// Nomad's API documentation (/v1/nodes, /v1/node/:id/allocations,
// PUT|POST /v1/node/:id/drain with a NodeUpdateDrainRequest). Nomad itself
// cannot be installed on our build machines; tests that use this check the
// documented wire format, and say so in their names.
package nomadtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Node is a client node the stand-in knows.
type Node struct {
	ID, Name, Status, SchedulingEligibility string
	Drain                                   bool
	Allocations                             []Allocation
}

// Allocation is an allocation placed on a node.
type Allocation struct{ ID, JobID, TaskGroup, ClientStatus, DesiredStatus string }

// DrainRequest is the body of a drain call, as Nomad documents it.
type DrainRequest struct {
	NodeID    string
	DrainSpec *struct {
		Deadline         int64 // nanoseconds
		IgnoreSystemJobs bool
	}
	MarkEligible bool
	Meta         map[string]string
}

// Server is a running stand-in.
type Server struct {
	URL    string
	mu     sync.Mutex
	nodes  []*Node
	drains []DrainRequest
	token  string
}

// Start serves nodes; requests must carry token in X-Nomad-Token when it is
// not empty.
func Start(t testing.TB, token string, nodes ...Node) *Server {
	s := &Server{token: token}
	for i := range nodes {
		s.nodes = append(s.nodes, &nodes[i])
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []map[string]any{}
		for _, n := range s.nodes {
			out = append(out, map[string]any{"ID": n.ID, "Name": n.Name, "Status": n.Status,
				"SchedulingEligibility": n.SchedulingEligibility, "Drain": n.Drain, "CreateIndex": 1, "ModifyIndex": 1})
		}
		reply(w, out)
	})
	mux.HandleFunc("GET /v1/node/{id}/allocations", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := s.node(r.PathValue("id"))
		if n == nil {
			http.Error(w, "node not found", http.StatusNotFound)
			return
		}
		out := []Allocation{}
		out = append(out, n.Allocations...)
		reply(w, out)
	})
	drain := func(w http.ResponseWriter, r *http.Request) {
		var req DrainRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		n := s.node(r.PathValue("id"))
		if n == nil || req.NodeID != n.ID {
			http.Error(w, "node not found", http.StatusNotFound)
			return
		}
		s.drains = append(s.drains, req)
		n.Drain = req.DrainSpec != nil
		if n.Drain {
			n.SchedulingEligibility = "ineligible"
		} else if req.MarkEligible {
			n.SchedulingEligibility = "eligible"
		}
		reply(w, map[string]any{"EvalIDs": []string{}, "EvalCreateIndex": 0, "NodeModifyIndex": 2})
	}
	mux.HandleFunc("PUT /v1/node/{id}/drain", drain)
	mux.HandleFunc("POST /v1/node/{id}/drain", drain)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token != "" && r.Header.Get("X-Nomad-Token") != s.token {
			http.Error(w, "Permission denied", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *Server) node(id string) *Node {
	for _, n := range s.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Drains returns the drain requests received so far.
func (s *Server) Drains() []DrainRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DrainRequest(nil), s.drains...)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Nomad-Index", "2")
	w.Header().Set("X-Nomad-KnownLeader", "true")
	w.Header().Set("X-Nomad-LastContact", "0")
	_ = json.NewEncoder(w).Encode(v)
}
