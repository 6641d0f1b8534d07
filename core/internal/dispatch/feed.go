package dispatch

import "sync"

// maxPending bounds the ids a subscriber that does not keep up may owe; past
// it, it is told to forget everything instead (reset).
const maxPending = 10_000

// Feed fans out the id of every job change the bus learns of — this
// replica's, as the store reports them, and other replicas', as heard
// through the database — to subscribers: the edges' caches of jobs, through
// EdgeService.WatchJobChanges. A new job is not sent: nobody can remember a
// job that did not exist. When the bus may have missed changes (its
// listener reconnected), every subscriber is told to reset.
type Feed struct {
	mu   sync.Mutex
	subs map[*FeedSub]struct{}
}

// NewFeed returns a feed with no subscribers.
func NewFeed() *Feed { return &Feed{subs: map[*FeedSub]struct{}{}} }

// FeedSub is one subscriber's share of the feed: what it has not taken yet.
type FeedSub struct {
	ready chan struct{} // holds a token while something waits to be taken

	mu    sync.Mutex
	ids   []string
	reset bool
}

// Subscribe starts a subscription; cancel ends it.
func (f *Feed) Subscribe() (s *FeedSub, cancel func()) {
	s = &FeedSub{ready: make(chan struct{}, 1)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}

// Ready is signalled when there is something to Take.
func (s *FeedSub) Ready() <-chan struct{} { return s.ready }

// Take returns what changed since the last Take: job ids, or reset when
// changes may have been missed (ids is then empty).
func (s *FeedSub) Take() (ids []string, reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, reset = s.ids, s.reset
	s.ids, s.reset = nil, false
	return ids, reset
}

func (s *FeedSub) add(id string, reset bool) {
	s.mu.Lock()
	switch {
	case reset || s.reset || len(s.ids) >= maxPending:
		s.ids, s.reset = nil, true
	default:
		s.ids = append(s.ids, id)
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// changed sends job id to every subscriber.
func (f *Feed) changed(id string) { f.send(id, false) }

// lost tells every subscriber to forget everything.
func (f *Feed) lost() { f.send("", true) }

func (f *Feed) send(id string, reset bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.add(id, reset)
	}
}
