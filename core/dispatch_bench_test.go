package core_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/pgtest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// The dispatch benchmarks run a real core (Postgres, MinIO, Connect over
// loopback HTTP) and talk to it the way gpu-nodes do. Each prints its figures
// beside a 1 s polling baseline measured in the same run: workers that claim
// straight from the store and sleep 1 s whenever the queue is empty.
// `make bench-dispatch` runs them once each (-benchtime=1x).

const (
	benchAgents     = 4     // idle agents waiting for work
	benchWorkers    = 16    // concurrent claim+complete loops
	latencySamples  = 400   // jobs made ready one at a time
	baselineSamples = 60    // the baseline is slow: fewer samples
	throughputJobs  = 10000 // jobs preloaded for the throughput run
	pollingInterval = time.Second
)

type benchStack struct {
	url   string
	pool  *pgxpool.Pool
	store *store.Store
	bus   *dispatch.Bus // a second "replica": its wake-ups reach core by NOTIFY
	user  string
	rpc   ytcaptionv1connect.WorkerServiceClient
}

func startBenchCore(b *testing.B) *benchStack {
	b.Helper()
	dbURL := pgtest.URL(b)
	m := miniotest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := core.New(ctx, core.Config{
		PostgresURL: dbURL, S3Endpoint: m.Endpoint, S3AccessKey: m.AccessKey, S3SecretKey: m.SecretKey,
		ServiceToken: "svc", NodeTokens: []string{"node"}, WorkDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler),
		Lease: time.Hour, // claimed jobs are never completed in the latency runs: no rescue may hand them out again
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		<-served
		c.Close()
	})
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	db := sqldb.FromPool(pool)
	st := store.New(db)
	u, err := st.EnsureUser(ctx, "bench", store.RoleUser)
	if err != nil {
		b.Fatal(err)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 2 * benchWorkers}
	client := &http.Client{Transport: &svcauth.Transport{Base: transport, Token: "node"}}
	return &benchStack{
		url: "http://" + ln.Addr().String(), pool: pool, store: st, user: u.ID,
		bus: dispatch.NewBus(slog.New(slog.DiscardHandler), db, "bench-producer"),
		rpc: ytcaptionv1connect.NewWorkerServiceClient(client, "http://"+ln.Addr().String()),
	}
}

// ready inserts n jobs for engine straight into the ready state, as if their
// download had finished, and returns their ids once committed. Each run uses
// its own engine name, so no job left over from one run reaches the next.
func (s *benchStack) ready(ctx context.Context, engine string, n int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		INSERT INTO jobs (user_id, status, url, canonical_url, source_kind, engine, audio_key, ready_at)
		SELECT $1, 'ready', 'https://example.com/a.mp3', 'https://example.com/a.mp3', 'http', $2, 'bench/audio.wav', now()
		FROM generate_series(1, $3) RETURNING id::text`, s.user, engine, n)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || n == 1 {
		return ids, err
	}
	// A live queue has planner statistics (autovacuum keeps them); a table
	// that just grew from nothing to n rows does not.
	_, err = s.pool.Exec(ctx, `ANALYZE jobs`)
	return ids, err
}

func (s *benchStack) acquire(ctx context.Context, engine string) (*ytcaptionv1.Assignment, error) {
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := s.rpc.AcquireJob(actx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "bench", Engines: []string{engine}}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetAssignment(), nil
}

// pollOnce is the baseline worker's claim: straight from the store.
func (s *benchStack) pollOnce(ctx context.Context, engine string) (string, int64, bool, error) {
	j, ok, err := s.store.ClaimReady(ctx, "baseline", []engines.Caps{{Name: engine}}, time.Hour, 0)
	return j.ID, j.Epoch, ok, err
}

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// claimed is one acquisition: which job, and when it reached the consumer.
type claimed struct {
	id string
	at time.Time
}

// measureLatency makes jobs for engine ready one at a time, with idle
// consumers waiting, and returns how long each took from ready to acquired.
// The clock starts before the insert, so the figures include its commit.
func measureLatency(b *testing.B, s *benchStack, engine string, samples int, gap time.Duration, claim func(ctx context.Context, engine string) (string, bool)) []time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan claimed)
	var wg sync.WaitGroup
	for range benchAgents {
		wg.Go(func() {
			for ctx.Err() == nil {
				if id, ok := claim(ctx, engine); ok {
					select {
					case got <- claimed{id, time.Now()}:
					case <-ctx.Done():
					}
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let every consumer reach its wait
	var lat []time.Duration
	for range samples {
		readyAt := time.Now()
		ids, err := s.ready(ctx, engine, 1)
		if err != nil {
			b.Fatal(err)
		}
		s.bus.Announce(ctx, store.Change{JobID: ids[0], To: job.StatusReady})
		select {
		case c := <-got:
			if c.id != ids[0] {
				b.Fatalf("acquired job %s, expected %s", c.id, ids[0])
			}
			lat = append(lat, c.at.Sub(readyAt))
		case <-time.After(10 * time.Second):
			b.Fatal("a ready job was not acquired within 10 s")
		}
		time.Sleep(rand.N(gap)) // arrivals independent of the consumers' rhythm
	}
	cancel()
	wg.Wait()
	return lat
}

// BenchmarkDispatchLatency: ready→acquired with idle agents long-polling core
// (woken by Postgres NOTIFY from another replica), against agents polling
// every second.
func BenchmarkDispatchLatency(b *testing.B) {
	s := startBenchCore(b)
	for b.Loop() {
		longPoll := measureLatency(b, s, "longpoll", latencySamples, 5*time.Millisecond, func(ctx context.Context, engine string) (string, bool) {
			a, err := s.acquire(ctx, engine)
			return a.GetJobId(), err == nil && a != nil
		})
		polling := measureLatency(b, s, "poll1s", baselineSamples, pollingInterval, func(ctx context.Context, engine string) (string, bool) {
			if id, _, ok, err := s.pollOnce(ctx, engine); err == nil && ok {
				return id, true
			}
			select {
			case <-ctx.Done():
			case <-time.After(pollingInterval):
			}
			return "", false
		})
		lp50, lp99 := percentile(longPoll, 50), percentile(longPoll, 99)
		bp50, bp99 := percentile(polling, 50), percentile(polling, 99)
		b.ReportMetric(ms(lp50), "p50-ms")
		b.ReportMetric(ms(lp99), "p99-ms")
		b.ReportMetric(ms(bp50), "poll1s-p50-ms")
		b.ReportMetric(ms(bp99), "poll1s-p99-ms")
		fmt.Printf("ready→acquired, %d idle agents: long-poll p50 %.2f ms p99 %.2f ms (n=%d) | 1 s polling p50 %.1f ms p99 %.1f ms (n=%d) | p99 %.0f× lower\n",
			benchAgents, ms(lp50), ms(lp99), len(longPoll), ms(bp50), ms(bp99), len(polling), float64(bp99)/float64(lp99))
	}
}

// BenchmarkDispatchThroughput: jobs/s through claim + complete with a no-op
// engine — workers calling AcquireJob and CompleteJob over Connect — against
// the polling baseline's workers claiming and completing straight in the store.
func BenchmarkDispatchThroughput(b *testing.B) {
	s := startBenchCore(b)
	run := func(engine string, work func(ctx context.Context, engine string) (bool, error)) float64 {
		ctx := context.Background()
		if _, err := s.ready(ctx, engine, throughputJobs); err != nil {
			b.Fatal(err)
		}
		// The last job's completion stops the clock and ends the polls still
		// waiting on an empty queue.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var done atomic.Int64
		var took time.Duration
		var wg sync.WaitGroup
		start := time.Now()
		for range benchWorkers {
			wg.Go(func() {
				for ctx.Err() == nil {
					ok, err := work(ctx, engine)
					switch {
					case ctx.Err() != nil:
					case err != nil:
						b.Error(err)
						cancel()
					case ok && done.Add(1) == throughputJobs:
						took = time.Since(start)
						cancel()
					}
				}
			})
		}
		wg.Wait()
		return throughputJobs / took.Seconds()
	}
	for b.Loop() {
		stop := cpuProfile(b, "")
		rpc := run("longpoll", func(ctx context.Context, engine string) (bool, error) {
			a, err := s.acquire(ctx, engine)
			if err != nil || a == nil {
				return false, err
			}
			_, err = s.rpc.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: a.GetJobId(), Epoch: a.GetEpoch()}))
			return err == nil, err
		})
		stop()
		polling := run("poll1s", func(ctx context.Context, engine string) (bool, error) {
			id, epoch, ok, err := s.pollOnce(ctx, engine)
			if err != nil {
				return false, err
			}
			if !ok {
				select {
				case <-ctx.Done():
				case <-time.After(pollingInterval):
				}
				return false, nil
			}
			_, err = s.store.Complete(ctx, id, epoch, "", 0)
			return err == nil, err
		})
		b.ReportMetric(rpc, "jobs/s")
		b.ReportMetric(polling, "poll1s-jobs/s")
		fmt.Printf("claim+complete, %d workers, %d jobs: Connect long-poll %.0f jobs/s | 1 s polling (store, no RPC) %.0f jobs/s | ratio %.2f\n",
			benchWorkers, throughputJobs, rpc, polling, rpc/polling)
	}
}

// cpuProfile starts a CPU profile of this process (core's handlers, the
// benchmark's clients and the store) into $YTCAPTION_BENCH_PPROF+suffix, when
// that is set, and returns what stops it. The database's own time is not in
// it: a wait on PostgreSQL shows as time off the CPU.
func cpuProfile(b *testing.B, suffix string) (stop func()) {
	b.Helper()
	path := os.Getenv("YTCAPTION_BENCH_PPROF")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}
