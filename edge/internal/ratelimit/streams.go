package ratelimit

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Streams caps the event streams (REST SSE, Connect WatchJob) each API key
// holds open on this edge. Every open stream costs core a watcher that reads
// the job on each change; without a cap one key could hold thousands.
//
// The count is per edge process, not in Redis: a place is given back on every
// exit path by the request that took it, with nothing to expire or leak when
// an edge dies mid-stream. With N edges behind a load balancer a key may hold
// up to N × its cap.
type Streams struct {
	mu      sync.Mutex
	open    map[string]int
	gauge   prometheus.Gauge
	refused prometheus.Counter
}

// NewStreams returns an empty count; its metrics go to reg (nil: not exported).
func NewStreams(reg prometheus.Registerer) *Streams {
	s := &Streams{
		open: map[string]int{},
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ytcaption_edge_event_streams", Help: "Event streams (SSE and WatchJob) open on this edge.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ytcaption_edge_event_streams_refused_total", Help: "Event streams refused because the API key held its plan's maximum.",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.gauge, s.refused)
	}
	return s
}

// Acquire takes one of key's max places. It returns false when all are
// taken; otherwise release gives the place back (calling it again does
// nothing).
func (s *Streams) Acquire(key string, max int) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[key] >= max {
		s.refused.Inc()
		return nil, false
	}
	s.open[key]++
	s.gauge.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.open[key]--; s.open[key] <= 0 {
				delete(s.open, key) // the map holds only keys with open streams
			}
			s.gauge.Dec()
		})
	}, true
}

// Open returns how many streams key holds.
func (s *Streams) Open(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open[key]
}
