package agent

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/waittest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// batchingServer stands in for an OpenAI-compatible transcription server
// that batches (vLLM, a batched faster-whisper server): up to size requests
// are decoded side by side, each in the same fixed time however many share
// the batch; more wait for a place. It answers the documented verbose_json.
// No real batching server runs here, hence the WireFormat in the names of
// the tests that use it.
type batchingServer struct {
	*httptest.Server
	places chan struct{}
	took   time.Duration
	gate   chan struct{} // non-nil: hold every request until it is closed

	mu                  sync.Mutex
	inFlight, most      int
	cancelled           int
	full                chan struct{} // closed when size requests are in flight at once
	fullOnce, closeOnce sync.Once
}

func newBatchingServer(t testing.TB, size int, took time.Duration, gated bool) *batchingServer {
	b := &batchingServer{places: make(chan struct{}, size), took: took, full: make(chan struct{})}
	if gated {
		b.gate = make(chan struct{})
	}
	b.Server = httptest.NewServer(b)
	t.Cleanup(func() { b.release(); b.Close() })
	return b
}

// release lets held requests go.
func (b *batchingServer) release() {
	if b.gate != nil {
		b.closeOnce.Do(func() { close(b.gate) })
	}
}

func (b *batchingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case b.places <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	defer func() { <-b.places }()
	b.mu.Lock()
	b.inFlight++
	b.most = max(b.most, b.inFlight)
	if b.inFlight == cap(b.places) {
		b.fullOnce.Do(func() { close(b.full) })
	}
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.inFlight--; b.mu.Unlock() }()
	hold := b.gate
	if hold == nil {
		timer := time.NewTimer(b.took)
		defer timer.Stop()
		hold = make(chan struct{})
		go func() { <-timer.C; close(hold) }()
	}
	select {
	case <-hold:
	case <-r.Context().Done():
		b.mu.Lock()
		b.cancelled++
		b.mu.Unlock()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"language":"en","duration":2.99,"text":"he was not an ill disposed young man",
		"segments":[{"id":0,"start":0.2,"end":1.3,"text":"he was not","compression_ratio":1.1},
		            {"id":1,"start":1.3,"end":2.8,"text":"an ill disposed young man","compression_ratio":1.2}],
		"words":[{"word":"he","start":0.2,"end":0.4},{"word":"man","start":2.3,"end":2.8}]}`))
}

// jobs is n assignments of the LibriVox clip, job-i with epoch 100+i.
func jobs(n int) (*ytcaptionv1.Assignment, []*ytcaptionv1.Assignment) {
	var all []*ytcaptionv1.Assignment
	for i := range n {
		a := assignment("sense_and_sensibility_01_austen_64kb-0880.wav")
		a.JobId, a.Epoch = fmt.Sprintf("job-%d", i), int64(100+i)
		all = append(all, a)
	}
	return all[0], all[1:]
}

func openAI(t testing.TB, url string) engine.Engine {
	eng, err := engine.NewOpenAI(engine.OpenAIConfig{BaseURL: url, Model: "whisper-1"})
	require.NoError(t, err)
	return eng
}

func withSlots(n int) func(*Config) { return func(c *Config) { c.Slots = n } }

// TestSlotsTranscribeSideBySideWireFormat: with --slots 8 the batching
// server has 8 requests in flight at once, the slots' polls say so, and each
// slot's job keeps its own lease: its heartbeats carry its own epoch, and a
// cancel of one job stops that job alone while the other 7 finish.
func TestSlotsTranscribeSideBySideWireFormat(t *testing.T) {
	t.Parallel()
	first, more := jobs(8)
	f := newFakeCore(first)
	f.more = more
	// Each job goes to an idle slot, as core's prefetch grace sees to: a slot
	// that prefetched a second job would hold it behind its gated first.
	f.idleFirst = true
	srv := newBatchingServer(t, 8, 0, true)
	a, _, stopped := serve(t, f, openAI(t, srv.URL), withSlots(8))
	waittest.Recv(t, srv.full, 2*time.Minute, "8 requests never were in flight at once")
	// The slots prefetch-poll while their jobs are held; a poll made as the
	// last job entered the engine may still count 7, a later one counts 8.
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.ContainsFunc(f.polls, func(p *ytcaptionv1.AcquireJobRequest) bool { return p.GetSlotsBusy() == 8 })
	}, 30*time.Second, 10*time.Millisecond, "polls tell core how many slots are busy")

	f.mu.Lock()
	f.cancelJob = "job-3"
	f.mu.Unlock()
	require.Eventually(t, func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return srv.cancelled == 1 },
		30*time.Second, 10*time.Millisecond, "the cancel of job-3 stops its request")
	srv.release()
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.completions) == 7 },
		30*time.Second, 10*time.Millisecond, "the other 7 finish")
	a.Drain()
	waitRun(t, stopped)

	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotContains(t, f.completions, "job-3")
	require.Nil(t, f.failed, "a cancelled job is not failed")
	require.Nil(t, f.released)
	srv.mu.Lock()
	require.Equal(t, 8, srv.most, "never more than the 8 slots")
	srv.mu.Unlock()
	for i := range 8 {
		id := fmt.Sprintf("job-%d", i)
		require.NotEmpty(t, f.beats[id], "%s has its own heartbeat", id)
		for _, e := range f.beats[id] {
			require.Equal(t, int64(100+i), e, "%s's heartbeats carry its own epoch", id)
		}
	}
	for _, p := range f.polls {
		require.Equal(t, int32(8), p.GetSlots())
		require.LessOrEqual(t, p.GetSlotsBusy(), int32(8))
	}
	require.False(t, f.polls[0].GetPrefetch(), "an idle slot polls as idle")
}

// BenchmarkSlotsWireFormat times a node through 64 jobs on a stand-in
// batching server (8 requests side by side, 150 ms each) with --slots 1 and
// --slots 8, and prints both throughputs and their ratio. `make bench-slots`.
func BenchmarkSlotsWireFormat(b *testing.B) {
	const n, took = 64, 150 * time.Millisecond
	rate := map[int]float64{}
	for _, slots := range []int{1, 8} {
		first, more := jobs(n)
		f := newFakeCore(first)
		f.more = more
		// Core's default interval: the fakes' 50 ms would be most of the node's work.
		f.beatEvery = 10 * time.Second
		for _, a := range append(more, first) {
			a.HeartbeatInterval = durationpb.New(f.beatEvery)
		}
		srv := newBatchingServer(b, 8, took, false)
		start := time.Now()
		a, _, stopped := serve(b, f, openAI(b, srv.URL), withSlots(slots))
		for {
			f.mu.Lock()
			done := len(f.completions)
			f.mu.Unlock()
			if done == n {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		elapsed := time.Since(start)
		a.Drain()
		<-stopped
		rate[slots] = n / elapsed.Seconds()
		b.Logf("--slots %d: %d jobs in %v: %.1f jobs/s (stand-in server: 8 side by side, %v each)", slots, n, elapsed.Round(time.Millisecond), rate[slots], took)
	}
	ratio := rate[8] / rate[1]
	fmt.Printf("slots: --slots 8 %.1f jobs/s, --slots 1 %.1f jobs/s: ratio %.2f (must show: >= 6)\n", rate[8], rate[1], ratio)
	b.ReportMetric(ratio, "slots8/slots1")
}

// TestCompletionsCarryTheNextPollWireFormat: with work queued, a slot's
// poll rides on the completion of its previous job (CompleteJob's next), so
// the node calls AcquireJob for fewer jobs than it runs; a job handed out
// that way is leased, run and completed like any other, once.
func TestCompletionsCarryTheNextPollWireFormat(t *testing.T) {
	t.Parallel()
	const n = 8
	first, more := jobs(n)
	f := newFakeCore(first)
	f.more = more
	srv := newBatchingServer(t, 1, 20*time.Millisecond, false)
	a, _, stopped := serve(t, f, openAI(t, srv.URL))
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.completions) == n },
		time.Minute, 10*time.Millisecond, "every job completes")
	a.Drain()
	waitRun(t, stopped)

	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.carried, "a completion carries the slot's next poll")
	require.ElementsMatch(t, f.completions, slices.Compact(slices.Sorted(slices.Values(f.completions))), "each job completes once")
	for _, id := range f.carried {
		require.Contains(t, f.completions, id, "a job handed out by a completion runs")
		require.NotEmpty(t, f.beats[id], "%s is leased: it has heartbeats", id)
	}
	require.Less(t, f.acquires, n, "fewer AcquireJob calls than jobs")
	require.Nil(t, f.failed)
	require.Nil(t, f.released)
	t.Logf("%d jobs: %d AcquireJob calls, %d handed out by completions", n, f.acquires, len(f.carried))
}
