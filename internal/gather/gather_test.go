package gather_test

import (
	"slices"
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

// recorder is a Send that records each batch's size and holds every batch
// until release is closed.
type recorder struct {
	mu      sync.Mutex
	sizes   []int
	release chan struct{}
}

func newRecorder() *recorder { return &recorder{release: make(chan struct{})} }

func (r *recorder) send(batch []*item) {
	r.mu.Lock()
	r.sizes = append(r.sizes, len(batch))
	r.mu.Unlock()
	<-r.release
	for _, it := range batch {
		close(it.done)
	}
}

// sent is the sizes of the batches sent so far.
func (r *recorder) sent() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sizes)
}

// waitSent waits until n batches have been sent.
func (r *recorder) waitSent(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(r.sent()) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches sent, want %d", len(r.sent()), n)
		}
	}
}

// addAll adds items numbered from, from+1, … and returns them.
func addAll(b *gather.Batcher[*item], from, n int) []*item {
	var its []*item
	for i := range n {
		it := newItem(from + i)
		its = append(its, it)
		b.Add(it)
	}
	return its
}

// Items that arrive while a batch is being sent wait for it, and go
// together after it, while fewer than a share (Max/Senders) wait: a sender
// started for each would send them one at a time.
func TestItemsWaitForTheRunningBatchUnlessAShareWaits(t *testing.T) {
	r := newRecorder()
	b := &gather.Batcher[*item]{Max: 64, Senders: 4, Send: r.send}
	all := addAll(b, 0, 1)
	r.waitSent(t, 1)
	all = append(all, addAll(b, 1, 15)...)
	time.Sleep(50 * time.Millisecond) // a sender started by mistake would have sent by now
	if got := r.sent(); !slices.Equal(got, []int{1}) {
		t.Errorf("batches while the first is sent: %v, want [1]: 15 items are less than a share", got)
	}
	close(r.release)
	for _, it := range all {
		<-it.done
	}
	if got := r.sent(); !slices.Equal(got, []int{1, 15}) {
		t.Errorf("batches %v, want [1 15]: what waited went together", got)
	}
}

// A sender takes its share of what waits, not all of it: with four senders
// and 64 items waiting, no batch holds more than 16. A whole share waiting
// starts another sender.
func TestSendersShareWhatWaits(t *testing.T) {
	const senders, most = 4, 64
	share := most / senders
	r := newRecorder()
	b := &gather.Batcher[*item]{Max: most, Senders: senders, Send: r.send}
	all := addAll(b, 0, 1)
	r.waitSent(t, 1)
	for i := 1; i < senders; i++ {
		all = append(all, addAll(b, len(all), share)...)
		r.waitSent(t, i+1) // a share waited: a sender of its own
	}
	all = append(all, addAll(b, len(all), most)...) // every sender busy: these wait
	close(r.release)
	for _, it := range all {
		<-it.done
	}
	sizes := r.sent()
	if !slices.Equal(sizes[:senders], []int{1, share, share, share}) {
		t.Errorf("the first batches were %v, want [1 %d %d %d]", sizes[:senders], share, share, share)
	}
	for i, n := range sizes[senders:] {
		if n > share {
			t.Errorf("batch %d after the first held %d items, more than a sender's share of %d", i, n, share)
		}
	}
}
