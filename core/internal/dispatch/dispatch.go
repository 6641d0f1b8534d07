// Package dispatch wakes whoever waits for work: fetch workers when a job is
// queued, long-polling agents when a job becomes ready, a held heartbeat when
// its job is cancelled, watchers when a job changes — in this core process and,
// through the database driver's Notify and Listen (Bus), in every replica on
// the same database. The store reports each committed job change and
// Bus.Announce is the one place that maps it to these wake-ups; nobody else
// sends one. The database stays the source of truth; a wake-up only says
// "look again now" instead of at the next poll.
package dispatch

import "sync"

// Signal is a broadcast wake-up. Waiters take the current channel with Wait
// before they look for work, so a Notify between the look and the wait is not
// lost: it closes the channel they already hold.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewSignal returns a Signal with no pending wake-up.
func NewSignal() *Signal { return &Signal{ch: make(chan struct{})} }

// Wait returns a channel that is closed by the next Notify.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// Notify wakes every current waiter.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// Keyed is a set of Signals by key (a job id), created on demand and dropped
// when the last waiter leaves, so it holds only keys someone waits on.
type Keyed struct {
	mu      sync.Mutex
	signals map[string]*keyed
}

type keyed struct {
	ch      chan struct{}
	waiters int
}

// NewKeyed returns an empty Keyed.
func NewKeyed() *Keyed { return &Keyed{signals: map[string]*keyed{}} }

// Wait returns a channel closed by the next Notify(key), and a release func the
// waiter must call when it stops waiting.
func (k *Keyed) Wait(key string) (<-chan struct{}, func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.signals[key]
	if s == nil {
		s = &keyed{ch: make(chan struct{})}
		k.signals[key] = s
	}
	s.waiters++
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			k.mu.Lock()
			defer k.mu.Unlock()
			s.waiters--
			if s.waiters == 0 && k.signals[key] == s {
				delete(k.signals, key)
			}
		})
	}
}

// Notify wakes every waiter on key; a key nobody waits on costs nothing.
func (k *Keyed) Notify(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.signals[key]; s != nil {
		close(s.ch)
		delete(k.signals, key)
	}
}

// Len reports how many keys have waiters (for tests and metrics).
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.signals)
}
