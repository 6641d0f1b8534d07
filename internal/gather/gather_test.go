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
	// 198 wait for the held batches and go at most 16 together.
	if want := senders + (items-senders+most-1)/most; batches > want {
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
