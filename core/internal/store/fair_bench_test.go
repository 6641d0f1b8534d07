package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// The fair-claim benchmarks run the download stage's claim on each driver
// beside the claim it replaced — first in, first out, its statement copied
// below — in the same run. `make bench-fair` runs them once each
// (-benchtime=1x).

const (
	fairWorkers   = 8                     // download workers claiming in a loop
	fairWork      = 20 * time.Millisecond // what "processing" a job takes
	fairBatch     = 500                   // one user's batch, queued at once
	fairSingles   = 50                    // another user's single jobs ...
	fairGap       = 20 * time.Millisecond // ... one every fairGap: within the batch's 1.25 s
	latencyQueue  = 10000                 // queued jobs when claim latency is measured
	latencyUsers  = 10                    // users waiting then, one of them with the big queue
	latencyClaims = 300                   // claims timed per statement
)

// claimed is what a benchmark needs of a claim.
type claimed struct {
	id, userID string
	epoch      int64
	wait       time.Duration // queued → claimed, on the database's clock
}

type claimer func(ctx context.Context, e storetest.Env) (claimed, bool, error)

func fairClaim(ctx context.Context, e storetest.Env) (claimed, bool, error) {
	j, ok, err := e.Store.ClaimQueued(ctx, "bench", time.Hour)
	return claimed{j.ID, j.UserID, j.Epoch, j.DownloadingAt.Sub(j.CreatedAt)}, ok, err
}

// fifoClaim is ClaimQueued before fair scheduling: the oldest runnable job.
func fifoClaim(ctx context.Context, e storetest.Env) (claimed, bool, error) {
	var c claimed
	var created, downloading time.Time
	err := e.DB.QueryRow(ctx, `UPDATE jobs SET status = 'downloading', epoch = epoch + 1, attempt = attempt + 1, lease_owner = 'bench',
			lease_expires_at = now() + interval '1 hour', downloading_at = now(), progress = 0, updated_at = now()
		WHERE id = (
			SELECT id FROM jobs WHERE status = 'queued' AND run_after <= now()
			ORDER BY run_after, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id, user_id, epoch, created_at, downloading_at`).Scan(&c.id, &c.userID, &c.epoch, &created, &downloading)
	if errors.Is(err, sqldb.ErrNoRows) {
		return c, false, nil
	}
	c.wait = downloading.Sub(created)
	return c, err == nil, err
}

// withFIFOIndex gives e back the index first in, first out read, which
// 0019 dropped.
func withFIFOIndex(tb testing.TB, e storetest.Env) {
	tb.Helper()
	if _, err := e.DB.Exec(context.Background(), `CREATE INDEX jobs_queued ON jobs (run_after, created_at) WHERE status = 'queued'`); err != nil {
		tb.Fatal(err)
	}
}

// queueMany queues n jobs of userID in one statement.
func queueMany(tb testing.TB, e storetest.Env, userID string, n int) {
	tb.Helper()
	_, err := e.DB.Exec(context.Background(), `
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
		INSERT INTO jobs (user_id, status, url, canonical_url, source_kind)
		SELECT $1, 'queued', 'http://example.com/a.ogg', 'http://example.com/a.ogg', 'http' FROM n`, userID, n)
	if err != nil {
		tb.Fatal(err)
	}
}

func finish(e storetest.Env, c claimed) error {
	return e.Store.MarkReady(context.Background(), c.id, c.epoch, store.Media{Title: "a", AudioKey: "audio/" + c.id + ".wav"})
}

// singlesWait runs fairWorkers download workers that claim with claim and
// process each job for fairWork, while bob queues fairSingles single jobs at
// a steady rate — with alice's batch of fairBatch queued just before, or
// with nothing else queued — and returns how long each of bob's jobs waited.
// fifo claims first in, first out instead.
func singlesWait(b *testing.B, d storetest.Driver, fifo, batch bool) []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := storetest.New(b, d)
	claim := fairClaim
	if fifo {
		claim = fifoClaim
		withFIFOIndex(b, e)
	}
	bob, err := e.Store.EnsureUser(ctx, "bob", store.RoleUser)
	if err != nil {
		b.Fatal(err)
	}
	if batch {
		queueMany(b, e, e.User.ID, fairBatch)
	}
	var (
		mu    sync.Mutex
		waits []time.Duration
		wg    sync.WaitGroup
	)
	for range fairWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, ok, err := claim(ctx, e)
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					b.Error(err)
					cancel()
					return
				case !ok: // an idle worker polls, with jitter
					time.Sleep(time.Millisecond + rand.N(time.Millisecond))
					continue
				}
				if c.userID == bob.ID {
					mu.Lock()
					waits = append(waits, c.wait)
					if len(waits) == fairSingles {
						cancel()
					}
					mu.Unlock()
				}
				time.Sleep(fairWork)
				if err := finish(e, c); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for range fairSingles {
		if _, err := e.Store.CreateJob(ctx, store.NewJob{UserID: bob.ID, URL: "http://example.com/b.ogg",
			CanonicalURL: "http://example.com/b.ogg", SourceKind: "http"}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(fairGap)
	}
	wg.Wait()
	if len(waits) != fairSingles {
		b.Fatalf("%d of bob's %d jobs claimed", len(waits), fairSingles)
	}
	return waits
}

// BenchmarkFairClaimSingleJobsWait: the wait of one user's single jobs while
// another's 500-job batch is being downloaded, against their wait with no
// batch, with the fair claim and with first in, first out.
func BenchmarkFairClaimSingleJobsWait(b *testing.B) {
	for _, d := range storetest.Drivers {
		b.Run(d.Name, func(b *testing.B) {
			for b.Loop() {
				type row struct {
					name           string
					alone, batched []time.Duration
				}
				rows := []row{
					{"fair", singlesWait(b, d, false, false), singlesWait(b, d, false, true)},
					{"fifo", singlesWait(b, d, true, false), singlesWait(b, d, true, true)},
				}
				for _, r := range rows {
					a50, a99 := pct(r.alone, 50), pct(r.alone, 99)
					w50, w99 := pct(r.batched, 50), pct(r.batched, 99)
					b.ReportMetric(msf(w50), r.name+"-batch-p50-ms")
					b.ReportMetric(msf(w99), r.name+"-batch-p99-ms")
					b.ReportMetric(msf(a50), r.name+"-alone-p50-ms")
					b.ReportMetric(msf(a99), r.name+"-alone-p99-ms")
					fmt.Printf("%s %s: single jobs' wait, %d workers × %v per job, %d singles one per %v | beside a %d-job batch p50 %.1f ms p99 %.1f ms | alone p50 %.1f ms p99 %.1f ms | ratio p50 %.1f× p99 %.1f×\n",
						d.Name, r.name, fairWorkers, fairWork, fairSingles, fairGap, fairBatch,
						msf(w50), msf(w99), msf(a50), msf(a99), ratio(w50, a50), ratio(w99, a99))
				}
			}
		})
	}
}

// BenchmarkFairClaimLatency: how long one claim takes with latencyQueue jobs
// queued by latencyUsers users — the fair claim against first in, first out
// on a database with the index it read (0019 dropped it), taking turns.
func BenchmarkFairClaimLatency(b *testing.B) {
	for _, d := range storetest.Drivers {
		b.Run(d.Name, func(b *testing.B) {
			for b.Loop() {
				ctx := context.Background()
				fair, fifo := latencyQueueOf(b, d), latencyQueueOf(b, d)
				withFIFOIndex(b, fifo)
				lat := map[string][]time.Duration{}
				for i := range latencyClaims {
					both := []struct {
						name  string
						e     storetest.Env
						claim claimer
					}{{"fair", fair, fairClaim}, {"fifo", fifo, fifoClaim}}
					if i%2 == 1 {
						slices.Reverse(both)
					}
					for _, c := range both {
						start := time.Now()
						got, ok, err := c.claim(ctx, c.e)
						took := time.Since(start)
						if err != nil || !ok {
							b.Fatalf("%s claim: ok=%v err=%v", c.name, ok, err)
						}
						lat[c.name] = append(lat[c.name], took)
						if err := finish(c.e, got); err != nil {
							b.Fatal(err)
						}
					}
				}
				f50, f99 := pct(lat["fair"], 50), pct(lat["fair"], 99)
				o50, o99 := pct(lat["fifo"], 50), pct(lat["fifo"], 99)
				b.ReportMetric(msf(f50), "fair-p50-ms")
				b.ReportMetric(msf(f99), "fair-p99-ms")
				b.ReportMetric(msf(o50), "fifo-p50-ms")
				b.ReportMetric(msf(o99), "fifo-p99-ms")
				fmt.Printf("%s: one claim with %d jobs queued by %d users | fair p50 %.2f ms p99 %.2f ms | fifo p50 %.2f ms p99 %.2f ms | ratio p50 %.1f× p99 %.1f×\n",
					d.Name, latencyQueue, latencyUsers, msf(f50), msf(f99), msf(o50), msf(o99), ratio(f50, o50), ratio(f99, o99))
			}
		})
	}
}

// latencyQueueOf is a database with latencyQueue jobs queued: all but one
// each of the other users' by alice.
func latencyQueueOf(b *testing.B, d storetest.Driver) storetest.Env {
	ctx := context.Background()
	e := storetest.New(b, d)
	queueMany(b, e, e.User.ID, latencyQueue-latencyUsers+1)
	for i := 1; i < latencyUsers; i++ {
		u, err := e.Store.EnsureUser(ctx, fmt.Sprintf("user-%d", i), store.RoleUser)
		if err != nil {
			b.Fatal(err)
		}
		queueMany(b, e, u.ID, 1)
	}
	if _, err := e.DB.Exec(ctx, `ANALYZE jobs`); err != nil { // as autovacuum would have by now
		b.Fatal(err)
	}
	return e
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, time.Microsecond)) }
