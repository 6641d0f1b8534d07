package core_test

import (
	"context"
	"errors"
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

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/pgtest"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// The dispatch benchmarks run a real core (Connect over loopback HTTP) and
// talk to it the way gpu-nodes do, on each store driver: PostgreSQL and the
// single box's SQLite. Each prints its figures
// beside baselines measured in the same run, since this machine's speed
// varies from day to day: the ratios hold, the absolute figures do not.
// `make bench-dispatch` runs them once each (-benchtime=1x); -count=N repeats.
// YTCAPTION_BENCH_PPROF=FILE writes a CPU profile of the Connect runs (see
// cpuProfile).

const (
	benchAgents     = 4     // idle agents waiting for work
	benchWorkers    = 16    // concurrent claim+complete loops
	latencySamples  = 400   // jobs made ready one at a time
	baselineSamples = 60    // the baseline is slow: fewer samples
	throughputJobs  = 10000 // jobs through each way of claiming and completing
	rounds          = 5     // the ways take turns, throughputJobs/rounds jobs a turn
	pollingInterval = time.Second
)

// benchDrivers are the store drivers every dispatch benchmark runs on.
var benchDrivers = []sqldb.Dialect{sqldb.Postgres, sqldb.SQLite}

type benchStack struct {
	db    sqldb.DB
	store *store.Store
	bus   *dispatch.Bus // a second "replica": its wake-ups reach core by NOTIFY (in process on SQLite)
	user  string
	rpc   ytcaptionv1connect.WorkerServiceClient
}

func startBenchCore(b *testing.B, driver sqldb.Dialect) *benchStack {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := core.Config{
		ServiceToken: "svc", NodeTokens: []string{"node"}, WorkDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler),
		// The blobs are core's directory on both drivers (presigning is a
		// local signature there as with S3), so the two differ only in
		// their database.
		DataDir: b.TempDir(),
		Lease:   time.Hour, // claimed jobs are never completed in the latency runs: no rescue may hand them out again
	}
	if driver == sqldb.Postgres {
		cfg.PostgresURL = pgtest.URL(b)
	}
	c, err := core.New(ctx, cfg)
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
	db := c.DB()
	st := store.New(db)
	u, err := st.EnsureUser(ctx, "bench", store.RoleUser)
	if err != nil {
		b.Fatal(err)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: 2 * benchWorkers}
	client := &http.Client{Transport: &svcauth.Transport{Base: transport, Token: "node"}}
	return &benchStack{
		db: db, store: st, user: u.ID,
		bus: dispatch.NewBus(slog.New(slog.DiscardHandler), db, "bench-producer"),
		rpc: ytcaptionv1connect.NewWorkerServiceClient(client, "http://"+ln.Addr().String()),
	}
}

// ready inserts n jobs for engine straight into the ready state, as if their
// download had finished, and returns their ids once committed. Each run uses
// its own engine name, so no job left over from one run reaches the next.
func (s *benchStack) ready(ctx context.Context, engine string, n int) ([]string, error) {
	rows, err := s.db.Query(ctx, `
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $3)
		INSERT INTO jobs (user_id, status, url, canonical_url, source_kind, engine, audio_key, ready_at)
		SELECT $1, 'ready', 'https://example.com/a.mp3', 'https://example.com/a.mp3', 'http', $2, 'bench/audio.wav', now()
		FROM n RETURNING id::text`, s.user, engine, n)
	ids, err := sqldb.Collect(rows, err, sqldb.Scalar[string])
	if err != nil || n == 1 {
		return ids, err
	}
	// A live queue has planner statistics (autovacuum keeps them); a table
	// that just grew from nothing to n rows does not.
	_, err = s.db.Exec(ctx, `ANALYZE jobs`)
	return ids, err
}

func (s *benchStack) acquire(ctx context.Context, node, engine string) (*ytcaptionv1.Assignment, error) {
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := s.rpc.AcquireJob(actx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: node, Engines: []string{engine}}))
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
// (woken by a NOTIFY from another replica; in process on SQLite), against
// agents polling every second.
func BenchmarkDispatchLatency(b *testing.B) {
	for _, driver := range benchDrivers {
		b.Run(string(driver), func(b *testing.B) {
			s := startBenchCore(b, driver)
			for b.Loop() {
				longPoll := measureLatency(b, s, "longpoll", latencySamples, 5*time.Millisecond, func(ctx context.Context, engine string) (string, bool) {
					a, err := s.acquire(ctx, "bench", engine)
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
				fmt.Printf("%s ready→acquired, %d idle agents: long-poll p50 %.2f ms p99 %.2f ms (n=%d) | 1 s polling p50 %.1f ms p99 %.1f ms (n=%d) | p99 %.0f× lower\n",
					driver, benchAgents, ms(lp50), ms(lp99), len(longPoll), ms(bp50), ms(bp99), len(polling), float64(bp99)/float64(lp99))
			}
		})
	}
}

// throughput runs benchWorkers workers, each made by worker, until n jobs
// of engine (preloaded ready) are done, and returns how long that took. A
// worker's step does one job's work and reports whether it finished one; it
// keeps its own state (a complete-and-next worker holds the job core handed
// it).
func (s *benchStack) throughput(b *testing.B, engine string, n int, worker func(i int) func(ctx context.Context) (bool, error)) time.Duration {
	b.Helper()
	ctx := context.Background()
	if _, err := s.ready(ctx, engine, n); err != nil {
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
	for i := range benchWorkers {
		step := worker(i)
		wg.Go(func() {
			for ctx.Err() == nil {
				ok, err := step(ctx)
				switch {
				case ctx.Err() != nil:
				case err != nil:
					b.Error(err)
					cancel()
				case ok && done.Add(1) == int64(n):
					took = time.Since(start)
					cancel()
				}
			}
		})
	}
	wg.Wait()
	if took == 0 {
		b.Fatalf("%s: the run ended with %d of %d jobs done", engine, done.Load(), n)
	}
	return took
}

// The raw-SQL floor's statements: the same claim (SKIP LOCKED, a new epoch,
// a lease) and fenced completion as the store's, of one row each, with none
// of the store's fairness, capability matching or segment check — the most
// the database itself gives these workers. The finishing trigger still runs:
// it is part of the table. The claim names no engine: the turns run one
// after another, each until its own jobs are done, so only the raw turn's
// are ready; and a filter the index does not hold made PostgreSQL sort every
// ready job for each claim.
const (
	rawClaim = `UPDATE jobs SET status = 'transcribing', epoch = epoch + 1, attempt = attempt + 1, lease_owner = $1,
			lease_expires_at = now() + interval '1 hour', transcribing_at = now(), progress = 0, updated_at = now()
		WHERE id = (SELECT id FROM jobs WHERE status = 'ready' AND run_after <= now()
			ORDER BY run_after, ready_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id::text, epoch`
	rawComplete = `UPDATE jobs SET status = 'succeeded', progress = 1, finished_at = now(), lease_owner = '', lease_expires_at = NULL, updated_at = now()
		WHERE id = $1 AND epoch = $2 AND status = 'transcribing' AND lease_expires_at > now()`
)

// idle is a polling worker's wait on an empty queue.
func idle(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(pollingInterval):
	}
}

// dispatchRates are one driver's claim+complete figures, in jobs/s.
type dispatchRates struct{ raw, store, connect, next float64 }

// BenchmarkDispatchThroughput: jobs/s through claim + complete with a no-op
// engine, on each driver, four ways in the same run: workers calling
// AcquireJob and CompleteJob over Connect (as gpu-nodes of the previous
// version do); workers completing with complete-and-next (CompleteJob's next:
// one call per job while work is queued); workers claiming
// and completing straight in the store, polling every second when the queue
// is empty (no RPC: what Connect adds is the difference); and the raw-SQL
// floor (rawClaim, rawComplete: what the store's SQL adds is the difference).
func BenchmarkDispatchThroughput(b *testing.B) {
	rates := map[sqldb.Dialect]dispatchRates{}
	for _, driver := range benchDrivers {
		b.Run(string(driver), func(b *testing.B) {
			s := startBenchCore(b, driver)
			for b.Loop() {
				raw := func(i int) func(ctx context.Context) (bool, error) {
					node := fmt.Sprintf("raw-%d", i)
					return func(ctx context.Context) (bool, error) {
						var id string
						var epoch int64
						err := s.db.QueryRow(ctx, rawClaim, node).Scan(&id, &epoch)
						if errors.Is(err, sqldb.ErrNoRows) {
							idle(ctx)
							return false, nil
						}
						if err != nil {
							return false, fmt.Errorf("raw claim: %w", err)
						}
						tag, err := s.db.Exec(ctx, rawComplete, id, epoch)
						if err != nil {
							return false, fmt.Errorf("raw completion: %w", err)
						}
						if tag.RowsAffected() != 1 {
							return false, fmt.Errorf("raw completion of job %s epoch %d changed %d rows", id, epoch, tag.RowsAffected())
						}
						return true, nil
					}
				}
				viaStore := func(i int) func(ctx context.Context) (bool, error) {
					node, caps := fmt.Sprintf("store-%d", i), []engines.Caps{{Name: "store"}}
					return func(ctx context.Context) (bool, error) {
						j, ok, err := s.store.ClaimReady(ctx, node, caps, time.Hour, 0)
						if err != nil || !ok {
							idle(ctx)
							return false, err
						}
						_, err = s.store.Complete(ctx, j.ID, j.Epoch, "", 0)
						return err == nil, err
					}
				}
				viaConnect := func(i int) func(ctx context.Context) (bool, error) {
					node := fmt.Sprintf("connect-%d", i)
					return func(ctx context.Context) (bool, error) {
						a, err := s.acquire(ctx, node, "connect")
						if err != nil || a == nil {
							return false, err
						}
						_, err = s.rpc.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: a.GetJobId(), Epoch: a.GetEpoch()}))
						return err == nil, err
					}
				}
				viaNext := func(i int) func(ctx context.Context) (bool, error) {
					poll := &ytcaptionv1.AcquireJobRequest{NodeId: fmt.Sprintf("next-%d", i), Engines: []string{"next"}}
					var held *ytcaptionv1.Assignment // handed out by the last completion
					return func(ctx context.Context) (bool, error) {
						if held == nil {
							a, err := s.acquire(ctx, poll.GetNodeId(), "next")
							if err != nil || a == nil {
								return false, err
							}
							held = a
						}
						resp, err := s.rpc.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{
							JobId: held.GetJobId(), Epoch: held.GetEpoch(), Next: poll}))
						if err != nil {
							return false, err
						}
						held = resp.Msg.GetNext()
						return true, nil
					}
				}
				// The ways take turns, so that the machine's speed, which
				// drifts within a run, weighs on each alike; the CPU profile
				// covers the Connect turns only.
				var took [4]time.Duration
				ways := []struct {
					engine  string
					profile bool
					worker  func(i int) func(ctx context.Context) (bool, error)
				}{{"raw", false, raw}, {"store", false, viaStore}, {"connect", true, viaConnect}, {"next", true, viaNext}}
				profile := cpuProfile(b, driver)
				for range rounds {
					for k, w := range ways {
						if w.profile {
							profile.resume()
						}
						took[k] += s.throughput(b, w.engine, throughputJobs/rounds, w.worker)
						profile.pause()
					}
				}
				rate := func(k int) float64 { return throughputJobs / took[k].Seconds() }
				r := dispatchRates{raw: rate(0), store: rate(1), connect: rate(2), next: rate(3)}
				rates[driver] = r
				b.ReportMetric(r.connect, "jobs/s")
				b.ReportMetric(r.next, "next-jobs/s")
				b.ReportMetric(r.store, "store-jobs/s")
				b.ReportMetric(r.raw, "raw-sql-jobs/s")
				fmt.Printf("%s claim+complete, %d workers, %d jobs each: raw SQL %.0f jobs/s | store %.0f | Connect %.0f | Connect complete-and-next %.0f | Connect/store %.2f | next/store %.2f | store/raw %.2f\n",
					driver, benchWorkers, throughputJobs, r.raw, r.store, r.connect, r.next, r.connect/r.store, r.next/r.store, r.store/r.raw)
			}
		})
	}
	pg, lite := rates[sqldb.Postgres], rates[sqldb.SQLite]
	if pg.raw > 0 && lite.raw > 0 {
		fmt.Printf("claim+complete, SQLite ÷ PostgreSQL: raw SQL %.2f | store %.2f | Connect %.2f | complete-and-next %.2f\n",
			lite.raw/pg.raw, lite.store/pg.store, lite.connect/pg.connect, lite.next/pg.next)
	}
}

// cpuProfile is a CPU profile of this process (core's handlers, the
// benchmark's clients and the store; SQLite too, which runs in process),
// written to $YTCAPTION_BENCH_PPROF.<driver>.<n> when that is set, over
// the stretches between resume and pause. PostgreSQL's own time is not in
// it: a wait on the server shows as time off the CPU. Go writes one profile
// per file, so each stretch goes to a file of its own (.1, .2, …), and
// `go tool pprof` merges the files it is given.
func cpuProfile(b *testing.B, driver sqldb.Dialect) *profiler {
	return &profiler{b: b, path: os.Getenv("YTCAPTION_BENCH_PPROF"), name: "." + string(driver)}
}

type profiler struct {
	b       *testing.B
	path    string
	name    string
	n       int
	running *os.File
}

func (p *profiler) resume() {
	if p.path == "" || p.running != nil {
		return
	}
	p.n++
	f, err := os.Create(fmt.Sprintf("%s%s.%d", p.path, p.name, p.n))
	if err != nil {
		p.b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		p.b.Fatal(err)
	}
	p.running = f
}

func (p *profiler) pause() {
	if p.running == nil {
		return
	}
	pprof.StopCPUProfile()
	if err := p.running.Close(); err != nil {
		p.b.Error(err)
	}
	p.running = nil
}
