// Package gather sends work that arrives together as one batch: group
// commit. Work that costs a fixed price per send — a commit, a round trip to
// another service — costs it once for every item waiting when a batch
// starts, instead of once each. An item that arrives alone is a batch of its
// own at once: nothing waits for company. Items that arrive while a batch is
// being sent wait for it, until a whole share of them (Max/Senders) waits
// and starts a sender of its own; a sender takes its share of what waits (a
// Senders-th, at least Max/Senders), so the batches sent at once are even.
//
// No goroutine outlives the work: a sender sends batches until nothing
// waits.
package gather

import "sync"

// Batcher gathers items of type T into batches for Send.
type Batcher[T any] struct {
	// Send sends a batch (at most Max items, at least one) and answers each
	// item itself: Batcher knows nothing of answers.
	Send func(batch []T)
	// Max bounds a batch: a larger one holds its first item's answer for
	// longer than sending together saves.
	Max int
	// Senders is how many batches are sent at once.
	Senders int

	mu      sync.Mutex
	waiting []T
	senders int
}

// Add queues items for the next batch, together, starting a sender when
// none runs, or when a whole share (Max/Senders) waits and fewer than
// Senders run. It does not wait for the batch: Send answers each item.
//
// Items that arrive while a batch is being sent wait for it, unless a share
// of them waits: a sender started for each would send them one or two at a
// time. (Core's store was handed a gathered call's creations a few
// microseconds apart; every one that found a sender free went alone, and
// the batches averaged 5 creations at saturation, each paying a statement
// and a commit.)
func (b *Batcher[T]) Add(items ...T) {
	if len(items) == 0 {
		return
	}
	b.mu.Lock()
	b.waiting = append(b.waiting, items...)
	senders := max(b.Senders, 1)
	start := b.senders == 0 || b.senders < senders && len(b.waiting) >= max(b.Max, 1)/senders
	if start {
		b.senders++
	}
	b.mu.Unlock()
	if start {
		go b.send()
	}
}

func (b *Batcher[T]) send() {
	for {
		b.mu.Lock()
		// Its share of what waits when much waits, not all of it: a
		// database runs each batch on one connection, one core, so four
		// batches of 16 commit sooner than one of 64 beside three of one
		// (PostgreSQL creations, BenchmarkCreations, 2026-12-03:
		// 6,000-6,700/s taking all, 7,800-8,000/s taking a share). A share
		// is never smaller than Max/Senders: a burst that one batch can
		// carry goes in one (split in four, the edge's gathered calls'
		// creations cost four commits each).
		most, senders := max(b.Max, 1), max(b.Senders, 1)
		n := min(len(b.waiting), most, max((len(b.waiting)+senders-1)/senders, most/senders))
		if n == 0 {
			b.senders--
			b.mu.Unlock()
			return
		}
		batch := make([]T, n)
		copy(batch, b.waiting)
		left := copy(b.waiting, b.waiting[n:])
		clear(b.waiting[left:]) // sent items are not kept alive by the queue
		b.waiting = b.waiting[:left]
		b.mu.Unlock()
		b.Send(batch)
	}
}
