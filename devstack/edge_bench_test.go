package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The edge benchmark drives the real stack on loopback — edge (auth cache,
// Redis rate limits, idempotency), core, Postgres, MinIO, Redis — with job
// status reads and job creations: open loop at a fixed 1000 req/s, and
// closed loop at saturation; and, in the same run, a bare Fiber handler on
// this machine, the ceiling the edge's own work is measured against.
//
// Reads are measured twice: of a finished job, which the edge answers from
// its job cache after a Redis rate-limit check, and of a running one, which
// it answers from the same cache while it follows core's change feed.
const (
	fixedRate      = 1000
	fixedFor       = 5 * time.Second
	warmFor        = time.Second // at half the saturated rate, before it is measured
	saturateFor    = 5 * time.Second
	saturateConns  = 64
	readRounds     = 5         // turns the ceiling and the reads take, saturateFor/readRounds each
	benchKeyBudget = 1_000_000 // per-key limits far above the load: the bench measures work, not refusals
)

type loadResult struct {
	ok, failed int
	took       time.Duration
	lat        []time.Duration
	why        map[string]int // failures by status and error code, or transport error
	// late is, in an open loop, the most a request was sent after its
	// time: a stall of this process (load generator, edge and core are
	// one) rather than of a server shows here, and the burst it sends
	// when it resumes shows in the latencies.
	late time.Duration
}

// fail counts one failure for why.
func (r *loadResult) fail(why string) {
	r.failed++
	if r.why == nil {
		r.why = map[string]int{}
	}
	r.why[why]++
}

func (r loadResult) rate() float64 { return float64(r.ok) / r.took.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	slices.Sort(r.lat)
	return r.lat[min(int(float64(len(r.lat))*p/100), len(r.lat)-1)]
}

func (r loadResult) String() string {
	s := fmt.Sprintf("%7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d ok, %d failed)",
		r.rate(), float64(r.pct(50))/1e6, float64(r.pct(99))/1e6, r.ok, r.failed)
	if r.late > 0 {
		s += fmt.Sprintf(" sent up to %.1f ms late", float64(r.late)/1e6)
	}
	// Why they failed, most common first: a rate of failures says nothing
	// without it.
	whys := slices.Collect(maps.Keys(r.why))
	slices.SortFunc(whys, func(a, b string) int { return r.why[b] - r.why[a] })
	for i, w := range whys {
		if i == 3 {
			s += " …"
			break
		}
		s += fmt.Sprintf(" %s ×%d", w, r.why[w])
	}
	return s
}

func benchClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}
}

// send makes one request and says "" when it got want, else why not: the
// status and error code, or the transport's error.
func send(c *http.Client, method, url, key, body string, want int) string {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode == want {
		_, _ = io.Copy(io.Discard, resp.Body)
		return ""
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	_, _ = io.Copy(io.Discard, resp.Body)
	// Numbers out of the message (retry in 3 s), so like failures count as one.
	return fmt.Sprintf("%d %s (%s)", resp.StatusCode, e.Error.Code, digits.ReplaceAllString(e.Error.Message, "N"))
}

var digits = regexp.MustCompile(`[0-9]+`)

// openLoop fires requests at a fixed rate whatever the latency, as real
// clients do, so a slow server shows in the latency — and in the rate,
// which counts until the last answer: a server that falls behind serves
// its backlog after the last request is sent (the single box's creations
// at 1,000 req/s read 990 req/s over the 5 s of sending, p50 4 s, while it
// served them at about 650/s).
func openLoop(rate int, d time.Duration, do func() string) loadResult {
	var mu sync.Mutex
	var r loadResult
	var wg sync.WaitGroup
	every := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		due := start.Add(time.Duration(i) * every)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			t0 := time.Now()
			why := do()
			el := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			r.late = max(r.late, t0.Sub(due))
			if why == "" {
				r.ok++
				r.lat = append(r.lat, el)
			} else {
				r.fail(why)
			}
		})
	}
	wg.Wait()
	r.took = time.Since(start)
	return r
}

// closedLoop runs conns clients back to back for d: the saturation rate.
func closedLoop(conns int, d time.Duration, do func() string) loadResult {
	var mu sync.Mutex
	var r loadResult
	var wg sync.WaitGroup
	var stop atomic.Bool
	start := time.Now()
	for range conns {
		wg.Go(func() {
			var mine loadResult
			for !stop.Load() {
				t0 := time.Now()
				if why := do(); why == "" {
					mine.ok++
					mine.lat = append(mine.lat, time.Since(t0))
				} else {
					mine.fail(why)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			r.add(mine) // mine.took is zero: r's is the loop's
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	r.took = time.Since(start)
	return r
}

// add counts o's requests into r, as if r had run o's time too.
func (r *loadResult) add(o loadResult) {
	r.ok, r.took, r.lat = r.ok+o.ok, r.took+o.took, append(r.lat, o.lat...)
	for w, n := range o.why {
		r.fail(w)
		r.failed, r.why[w] = r.failed+n-1, r.why[w]+n-1
	}
}

// interleaved runs a closed loop of each of dos in turn, a slice at a time,
// for rounds rounds: each runs rounds × slice in all, over the same minute
// as the others, so that a ratio between them measures the work and not
// the machine's speed at two moments (the hypervisor's steal moved bare
// Fiber's rate by 1.6× within a morning here, and reads measured 10 s
// after it read 0.48-0.75 of it with the same code).
func interleaved(rounds int, slice time.Duration, dos ...func() string) []loadResult {
	out := make([]loadResult, len(dos))
	for range rounds {
		for i, do := range dos {
			out[i].add(closedLoop(saturateConns, slice, do))
		}
	}
	return out
}

// goneServer answers every request 404 Not Found.
func goneServer(b *testing.B) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	b.Cleanup(srv.Close)
	return srv.URL
}

// bareFiber serves a constant JSON job from a Fiber handler with nothing in
// front of it: the most this machine's HTTP stack gives.
func bareFiber(b *testing.B) string {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/v1/jobs/:id", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"id": c.Params("id"), "status": "succeeded", "progress": 1})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	b.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

// floorBatch is how many rows the insert floor writes in one statement:
// with saturateConns in flight, a few statements at once, as the store's
// group commit sends them (one statement for every creation waiting).
const floorBatch = 16

// insertFloor is creations' physical-limit companion on PostgreSQL: the
// rows a creation inserts (the same columns and values as the store's
// statement, without its quota check, returning the id and creation time)
// into a copy of the jobs table with all its indexes, saturateConns rows in
// flight in statements of floorBatch rows, for saturateFor — the database's
// own ceiling for new jobs while the stack idles. The copy is dropped
// afterwards.
func insertFloor(b *testing.B, dbURL string) loadResult {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_floor (LIKE jobs INCLUDING ALL)`); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if _, err := pool.Exec(ctx, `DROP TABLE bench_floor`); err != nil {
			b.Error(err)
		}
	}()
	var user string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM users LIMIT 1`).Scan(&user); err != nil {
		b.Fatal(err)
	}
	const row = `(gen_random_uuid(), $1::uuid, 'queued', $2, $2, 'http', 'auto', '', '', 3, 'auto', 'transcribe', '', '', '', false, 0, 0, '[]', true, true)`
	insert := `INSERT INTO bench_floor (id, user_id, status, url, canonical_url, source_kind, language, engine, model, max_attempts,
		source, task, prompt, webhook_url, trace_parent, speakers, min_speakers, max_speakers, vocabulary, silence_guard, repetition_guard)
		VALUES ` + strings.Repeat(row+", ", floorBatch-1) + row + ` RETURNING id, created_at`
	r := closedLoop(saturateConns/floorBatch, saturateFor, func() string {
		rows, err := pool.Query(ctx, insert, user, "http://127.0.0.1:9/clip.ogg")
		if err == nil {
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			return "error: " + err.Error()
		}
		return ""
	})
	r.ok *= floorBatch // rows, not statements
	return r
}

// BenchmarkEdge runs the measurements on both stores: PostgreSQL with Redis
// and MinIO, as a cluster runs, and the single box's SQLite.
//
// YTCAPTION_BENCH_CPUPROFILE=PREFIX writes a CPU profile of each saturated
// phase — the whole process: client, edge, core and, on SQLite, the
// database — to PREFIX-<store>-<phase>.pprof (go tool pprof -top); the
// reads' holds bare Fiber's turns too (-focus rest for the edge's).
func BenchmarkEdge(b *testing.B) {
	budget := func(c *Config) { c.CreateRate, c.ReadRate = benchKeyBudget, benchKeyBudget }
	b.Run("postgres", func(b *testing.B) { benchEdge(b, "postgres", startStackWith(b, "yt-dlp", budget)) })
	b.Run("sqlite", func(b *testing.B) { benchEdge(b, "sqlite", startSingleBoxWith(b, "yt-dlp", budget)) })
}

func benchEdge(b *testing.B, store string, s testStack) {
	hc := benchClient()
	b.Cleanup(hc.CloseIdleConnections) // servers shutting down wait for open connections
	c := client{t: b, base: s.EdgeURL, key: s.APIKey}
	// Creations point at a link that answers 404: each job fails at once,
	// for good, in the download stage, instead of loading the machine with
	// transcription — or with retries, as a closed port's (a network
	// fault, retried) did: three claims a creation.
	gone := goneServer(b) + "/clip.ogg"
	body := `{"url":"` + gone + `"}`
	id := c.create(gone).ID
	running := c.create(hangingServer(b) + "/clip.ogg").ID
	c.waitFor(id, 30*time.Second, terminal)
	c.waitFor(running, 30*time.Second, func(j jobJSON) bool { return j.Status == "downloading" })
	bare := bareFiber(b)
	profile := func(phase string, run func() loadResult) loadResult {
		prefix := os.Getenv("YTCAPTION_BENCH_CPUPROFILE")
		if prefix == "" {
			return run()
		}
		f, err := os.Create(fmt.Sprintf("%s-%s-%s.pprof", prefix, store, phase))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
		return run()
	}
	for b.Loop() {
		read := func() string { return send(hc, "GET", s.EdgeURL+"/v1/jobs/"+id, s.APIKey, "", http.StatusOK) }
		readRunning := func() string { return send(hc, "GET", s.EdgeURL+"/v1/jobs/"+running, s.APIKey, "", http.StatusOK) }
		create := func() string { return send(hc, "POST", s.EdgeURL+"/v1/jobs", s.APIKey, body, http.StatusAccepted) }
		bareRead := func() string { return send(hc, "GET", bare+"/v1/jobs/"+id, "", "", http.StatusOK) }
		// The ceiling and the reads first, while the stack idles: after
		// each creation phase it fails thousands of downloads in the
		// background (on SQLite for a while), and measured after them, on
		// SQLite, bare Fiber read less than the edge's reads did (ratios of
		// 1.2). The ceiling and the reads take turns (interleaved); the
		// insert floor comes after them, so that what PostgreSQL writes
		// after it loads no read. Each creation phase waits for the backlog
		// of the one before to drain. The creations do not take turns with
		// the ceiling: beside them it ran with the download stage failing
		// their jobs in the background, and read 12-15 % less than beside
		// the reads in the same run (three runs).
		readsFixed := openLoop(fixedRate, fixedFor, read)
		var bareMax, readsMax, runningMax loadResult
		profile("reads", func() loadResult {
			r := interleaved(readRounds, saturateFor/readRounds, bareRead, read, readRunning)
			bareMax, readsMax, runningMax = r[0], r[1], r[2]
			return readsMax
		})
		var floor loadResult
		if s.DBURL != "" {
			floor = insertFloor(b, s.DBURL)
		}
		createsFixed := openLoop(fixedRate, fixedFor, create)
		waitQueueEmpty(b, s.CoreMetricsURL)
		createsMax := profile("creations", func() loadResult { return closedLoop(saturateConns, saturateFor, create) })
		// Half the saturated rate: what a deployment sized at twice its
		// load sees.
		waitQueueEmpty(b, s.CoreMetricsURL)
		half := max(int(createsMax.rate()/2), 1)
		// A second at that rate first, reported apart: after the drain
		// the edge has closed the load's idle connections (after a
		// minute) and its own to core (90 s), and the first quarter
		// second of the phase ran at up to 122 ms in 3 of 6 runs.
		warm := openLoop(half, warmFor, create)
		createsHalf := openLoop(half, fixedFor, create)
		if j := c.get(running); j.Status != "downloading" {
			b.Fatalf("the running job left its download stage (%s) during the benchmark", j.Status)
		}
		fmt.Printf("edge on %s, loopback, 2 cores shared by client, edge, core and the database (and Redis):\n", store)
		fmt.Printf("  reads     at %d req/s: %s\n", fixedRate, readsFixed)
		fmt.Printf("  creations at %d req/s: %s\n", fixedRate, createsFixed)
		fmt.Printf("  reads     saturated:   %s  (finished job)\n", readsMax)
		fmt.Printf("  reads     saturated:   %s  (running job)\n", runningMax)
		fmt.Printf("  creations saturated:   %s\n", createsMax)
		fmt.Printf("  creations at %d req/s: %s  (half the saturated rate, after %s at it)\n", half, createsHalf, warmFor)
		fmt.Printf("  warm-up   at %d req/s: %s  (not counted)\n", half, warm)
		fmt.Printf("  bare Fiber saturated:  %s\n", bareMax)
		if s.DBURL != "" {
			fmt.Printf("  database insert floor: %7.0f rows/s  (%d in flight, %d a statement; creations ÷ floor %.3f, floor ÷ bare Fiber %.3f)\n",
				floor.rate(), saturateConns, floorBatch, createsMax.rate()/floor.rate(), floor.rate()/bareMax.rate())
			b.ReportMetric(createsMax.rate()/floor.rate(), "creates/floor")
		}
		fmt.Printf("  / bare Fiber: finished-job reads %.3f, running-job reads %.3f, creations %.3f; creations at half rate p99 %.1f ms\n",
			readsMax.rate()/bareMax.rate(), runningMax.rate()/bareMax.rate(), createsMax.rate()/bareMax.rate(), float64(createsHalf.pct(99))/1e6)
		b.ReportMetric(readsMax.rate(), "reads/s")
		b.ReportMetric(runningMax.rate(), "running-reads/s")
		b.ReportMetric(createsMax.rate(), "creates/s")
		b.ReportMetric(float64(createsFixed.pct(99))/1e6, "create-p99-ms@1k")
		b.ReportMetric(float64(createsHalf.pct(99))/1e6, "create-p99-ms@half")
		b.ReportMetric(readsMax.rate()/bareMax.rate(), "reads/bare")
		b.ReportMetric(runningMax.rate()/bareMax.rate(), "running-reads/bare")
		b.ReportMetric(createsMax.rate()/bareMax.rate(), "creates/bare")
	}
}

// waitQueueEmpty waits until core's queue depth metric counts only the
// running job the reads use (or drainFor passes, which it logs): jobs
// created by one phase do not load the next. The half-rate phase measures
// a deployment sized at twice its load, not one still serving an overload:
// the download stage fails the saturated phase's jobs 150-300 a second,
// so a faster phase leaves a longer backlog (20,000 jobs outlasted the one
// minute this wait used to allow, and the half-rate p99 read 107 ms;
// 27,000 outlasted three minutes, and it read 132 ms).
func waitQueueEmpty(b *testing.B, metricsURL string) {
	const drainFor = 5 * time.Minute
	if metricsURL == "" {
		return
	}
	re := regexp.MustCompile(`(?m)^ytcaption_core_queue_depth(\{[^}]*\})? ([0-9.e+]+)$`)
	depth := 0.0
	defer func() {
		if depth > 1 {
			b.Logf("after %s %.0f jobs are still queued or downloading: they load the phases after", drainFor, depth)
		}
	}()
	// Once a second: each scrape counts the jobs by status, and at five a
	// second the counting took a seventh of PostgreSQL's time from the
	// draining it waits for.
	for deadline := time.Now().Add(drainFor); time.Now().Before(deadline); time.Sleep(time.Second) {
		resp, err := http.Get(metricsURL)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		depth = 0
		for _, m := range re.FindAllStringSubmatch(string(body), -1) {
			v, _ := strconv.ParseFloat(m[2], 64)
			depth += v
		}
		if depth <= 1 {
			return
		}
	}
}
