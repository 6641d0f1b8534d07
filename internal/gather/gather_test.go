package gather_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ytcaption/ytcaption/internal/gather"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// item is answered by closing done.
type item struct {
	n    int
	done chan struct{}
}

func newItem(n int) *item { return &item{n: n, done: make(chan struct{})} }

func TestAnItemAloneIsSentAtOnce(t *testing.T) {
	var sent [][]int
	b := &gather.Batcher[*item]{Max: 8, Senders: 2, Send: func(batch []*item) {
		var ns []int
		for _, it := range batch {
			ns = append(ns, it.n)
		}
		sent = append(sent, ns) // before the answers: the test reads it after them
		for _, it := range batch {
			close(it.done)
		}
	}}
	it := newItem(1)
	b.Add(it)
	select {
	case <-it.done:
	case <-time.After(10 * time.Second):
		t.Fatal("an item alone was not sent")
	}
	if len(sent) != 1 || len(sent[0]) != 1 {
		t.Fatalf("sent %v, want one batch of the one item", sent)
	}
}

// While a batch is being sent, the items that arrive wait and go together,
// at most Max a batch and at most Senders batches at once; every item is
// sent exactly once.
func TestItemsArrivingTogetherGoInFewBatches(t *testing.T) {
	const items, most, senders = 200, 16, 2
	release := make(chan struct{})
	var mu sync.Mutex
	var batches, running, mostRunning int
	seen := map[int]int{}
	b := &gather.Batcher[*item]{Max: most, Senders: senders, Send: func(batch []*item) {
		mu.Lock()
		batches++
		running++
		mostRunning = max(mostRunning, running)
		if len(batch) > most {
			t.Errorf("a batch of %d, more than Max %d", len(batch), most)
		}
		for _, it := range batch {
			seen[it.n]++
		}
		mu.Unlock()
		<-release // the first batches are held while the rest arrive
		mu.Lock()
		running--
		mu.Unlock()
		for _, it := range batch {
			close(it.done)
		}
	}}
	all := make([]*item, items)
	for i := range all {
		all[i] = newItem(i)
		b.Add(all[i])
	}
	close(release)
	for _, it := range all {
		<-it.done
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range items {
		if seen[i] != 1 {
			t.Fatalf("item %d was sent %d times", i, seen[i])
		}
	}
	if mostRunning > senders {
		t.Errorf("%d batches were sent at once, more than Senders %d", mostRunning, senders)
	}
	// The first Senders items each start a batch of their own; the other
	// 198 wait for the held batches and go up to 16 together (fewer at the
	// tail, where a sender's share of what is left is smaller).
	if want := items / 8; batches > want {
		t.Errorf("%d items went in %d batches, want at most %d", items, batches, want)
	}
}

// A sender ends when nothing waits: items added later start a new one.
func TestSendersEndWhenNothingWaits(t *testing.T) {
	var sends atomic.Int64
	b := &gather.Batcher[*item]{Max: 4, Senders: 1, Send: func(batch []*item) {
		sends.Add(1)
		for _, it := range batch {
			close(it.done)
		}
	}}
	for round := range 3 {
		it := newItem(round)
		b.Add(it)
		<-it.done
	}
	if sends.Load() != 3 {
		t.Fatalf("%d sends for three items one after another, want 3", sends.Load())
	}
	// goleak (TestMain) fails the package if a sender were left running.
}

// A sender takes its share of what waits, not all of it: with four senders
// and 64 items waiting, no batch holds more than 16.
func TestSendersShareWhatWaits(t *testing.T) {
	const senders = 4
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	b := &gather.Batcher[*item]{Max: 64, Senders: senders, Send: func(batch []*item) {
		mu.Lock()
		sizes = append(sizes, len(batch))
		mu.Unlock()
		if batch[0].n < senders {
			<-release // the first items hold every sender while the rest queue
		}
		for _, it := range batch {
			close(it.done)
		}
	}}
	var all []*item
	for i := range senders {
		it := newItem(i)
		all = append(all, it)
		b.Add(it)
		// Each first item is its sender's batch before the next arrives.
		for {
			mu.Lock()
			n := len(sizes)
			mu.Unlock()
			if n == i+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := range 64 {
		it := newItem(senders + i)
		all = append(all, it)
		b.Add(it)
	}
	close(release)
	for _, it := range all {
		<-it.done
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range sizes[senders:] {
		if n > 64/senders {
			t.Errorf("batch %d after the first held %d items, more than a sender's share of %d", i, n, 64/senders)
		}
	}
}
