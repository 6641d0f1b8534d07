package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/redistest"
)

const (
	librivox = "/usr/share/pocketsphinx/test/data/librivox"
	lease    = 3 * time.Second
	nodes    = 3
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// build compiles the three binaries once, from this module.
func build(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./core/cmd/ytcaption-core", "./edge/cmd/ytcaption-edge", "./gpu-node/cmd/ytcaption-gpu-node")
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	return dir
}

// process is one real binary the suite starts, signals and restarts.
type process struct {
	t    *testing.T
	name string
	argv []string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newProcess(t *testing.T, logDir, name string, argv ...string) *process {
	t.Helper()
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	require.NoError(t, err)
	p := &process{t: t, name: name, argv: argv, log: f}
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL)
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *process) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	require.NoError(p.t, cmd.Start())
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(p.done)
}

func (p *process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// stop signals the process and waits for it to exit (SIGKILL after 30 s).
func (p *process) stop(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot handle SIGTERM
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// fakeEngine stands in for an OpenAI-compatible transcription server: it
// answers verbose_json after a delay, like a GPU busy on the audio.
func fakeEngine(delay time.Duration) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"language":"en","duration":2.99,"text":"he was not an ill disposed young man",
			"segments":[{"id":0,"start":0.2,"end":1.3,"text":"he was not","compression_ratio":1.1},
			            {"id":1,"start":1.3,"end":2.8,"text":"an ill disposed young man","compression_ratio":1.2}],
			"words":[{"word":"he","start":0.2,"end":0.4},{"word":"man","start":2.3,"end":2.8}]}`))
	}))
}

var metricLine = regexp.MustCompile(`(?m)^(ytcaption_[a-z_]+_total) ([0-9.e+]+)$`)

// scrape reads a process's counters from its metrics URL; restarts reset
// them, so the suite scrapes core before each restart and adds up.
func scrape(metricsURL string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(metricsURL)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, m := range metricLine.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] = v
	}
	return out
}

func scrapeCounter(metricsURL, name string) float64 { return scrape(metricsURL)[name] }

const faultSIGSTOP = "SIGSTOP gpu-node past its lease"

// fault is one injected fault. A fault on a gpu-node names the jobs the node
// held: they resume when another node claims them.
type fault struct {
	kind string
	at   time.Time
	jobs map[string]int64 // id → the node's epoch
}

// TestChaos submits jobs through the edge while faults hit the system, then
// checks that every accepted job succeeded exactly once.
func TestChaos(t *testing.T) {
	jobs := envInt("YTCAPTION_CHAOS_JOBS", 40)
	rounds := envInt("YTCAPTION_CHAOS_ROUNDS", 1)
	bins := build(t)
	pg := startPostgres(t)
	minio := miniotest.Start(t)
	rds := redistest.Start(t)
	engine := fakeEngine(700 * time.Millisecond)
	defer engine.Close()
	media := httptest.NewServer(http.FileServer(http.Dir(librivox)))
	defer media.Close()
	logs := t.TempDir()

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.url())
	require.NoError(t, err)
	defer pool.Close()
	_, err = migrations.Migrate(ctx, sqldb.FromPool(pool))
	require.NoError(t, err)
	st := store.New(sqldb.FromPool(pool))
	u, err := st.EnsureUser(ctx, "chaos", store.RoleUser)
	require.NoError(t, err)
	key, err := st.CreateAPIKey(ctx, u.ID)
	require.NoError(t, err)

	corePort, edgePort := freePort(t), freePort(t)
	coreURL := fmt.Sprintf("http://127.0.0.1:%d", corePort)
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", edgePort)
	// Metrics are on listeners of their own, off the API ports.
	coreMetrics, edgeMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	core := newProcess(t, logs, "core", bins+"/ytcaption-core", "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", corePort),
		"--metrics-addr", coreMetrics,
		"--postgres-url", pg.url(), "--s3-endpoint", minio.Endpoint, "--s3-access-key", minio.AccessKey, "--s3-secret-key", minio.SecretKey,
		"--service-token", "chaos-service", "--node-tokens", "chaos-node", "--allow-private-urls",
		"--lease", lease.String(), "--heartbeat-interval", "1s", "--work-dir", t.TempDir(), "--log-format", "text")
	edge := newProcess(t, logs, "edge", bins+"/ytcaption-edge", "--addr", fmt.Sprintf("127.0.0.1:%d", edgePort),
		"--connect-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--core-url", coreURL, "--service-token", "chaos-service", "--redis-url", rds.URL(), "--metrics-addr", edgeMetrics, "--log-format", "text")
	var agents []*process
	for i := range nodes {
		agents = append(agents, newProcess(t, logs, fmt.Sprintf("gpu-node-%d", i), bins+"/ytcaption-gpu-node",
			"--core-url", coreURL, "--node-token", "chaos-node", "--node-id", fmt.Sprintf("node-%d", i), "--engine", "openai",
			"--openai-base-url", engine.URL, "--work-dir", t.TempDir(), "--metrics-addr", "", "--log-format", "text"))
	}
	core.start()
	edge.start()
	for _, a := range agents {
		a.start()
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(edgeURL + "/health/ready")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "the stack did not become ready")

	// Submit at a steady rate across the fault schedule, so work is in flight
	// at every fault. A submission refused while core restarts is retried:
	// only accepted jobs count.
	faultPeriod := time.Duration(rounds) * 30 * time.Second
	var accepted []string
	var failures []time.Time // submissions refused or failed, for whatever reason
	var amu sync.Mutex
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		every := faultPeriod / time.Duration(jobs)
		for i := range jobs {
			for {
				id, err := submit(edgeURL, key, fmt.Sprintf("chaos-%d", i), fmt.Sprintf("%s/sense_and_sensibility_01_austen_64kb-0880.wav?n=%d", media.URL, i)) // distinct media: no transcript cache hits
				if err == nil {
					amu.Lock()
					accepted = append(accepted, id)
					amu.Unlock()
					break
				}
				amu.Lock()
				failures = append(failures, time.Now())
				amu.Unlock()
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(every)
		}
	}()

	// busy picks a node that holds a job now, so the fault hits work in
	// flight, and returns the jobs it holds.
	busy := func() (int, map[string]int64) {
		for range 50 {
			for _, i := range rand.Perm(nodes) {
				rows, err := pool.Query(ctx, `SELECT id::text, epoch FROM jobs WHERE status = 'transcribing' AND lease_owner = $1`, fmt.Sprintf("node-%d", i))
				if err != nil {
					continue
				}
				held := map[string]int64{}
				var id string
				var epoch int64
				_, err = pgx.ForEachRow(rows, []any{&id, &epoch}, func() error { held[id] = epoch; return nil })
				if err == nil && len(held) > 0 {
					return i, held
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		return rand.N(nodes), nil
	}
	var faults []fault
	var redisDown [][2]time.Time // when Redis was stopped
	counters := map[string]float64{}
	addCounters := func() {
		for k, v := range scrape("http://" + coreMetrics + "/metrics") {
			counters[k] += v
		}
	}
	pause := func() { time.Sleep(3 * time.Second) }
	for range rounds {
		pause()
		i, held := busy()
		faults = append(faults, fault{"kill -9 gpu-node", time.Now(), held})
		agents[i].stop(syscall.SIGKILL)
		agents[i].start()

		pause()
		i, held = busy()
		agents[i].signal(syscall.SIGSTOP) // then note the time: what finished before is not late
		faults = append(faults, fault{faultSIGSTOP, time.Now(), held})
		time.Sleep(lease + 2*time.Second)
		agents[i].signal(syscall.SIGCONT)

		pause()
		faults = append(faults, fault{"restart core", time.Now(), nil})
		addCounters()
		core.stop(syscall.SIGTERM)
		core.start()

		pause()
		faults = append(faults, fault{"restart postgres", time.Now(), nil})
		pg.restart()

		pause()
		down := time.Now()
		faults = append(faults, fault{"stop redis", down, nil})
		rds.Stop()
		time.Sleep(3 * time.Second)
		rds.Start()
		redisDown = append(redisDown, [2]time.Time{down, time.Now()})
	}
	<-submitted

	// Wait for every accepted job to end.
	conn := pg.conn(ctx)
	defer conn.Close(ctx)
	var open int
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err := conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')`).Scan(&open)
		if err != nil {
			conn.Close(ctx)
			conn = pg.conn(ctx)
			continue
		}
		if open == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	addCounters()

	amu.Lock()
	ids := slices.Clone(accepted)
	amu.Unlock()
	// Every submission carries an Idempotency-Key, so its retries never make
	// a second job: the jobs in the database are exactly the accepted ones.
	var succeeded, lost int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status = 'succeeded'`).Scan(&succeeded))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::uuid[]) a(id)
		WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = a.id AND j.status = 'succeeded')`, ids).Scan(&lost))
	rows, err := conn.Query(ctx, `SELECT status, error_code, count(*) FROM jobs WHERE status <> 'succeeded' GROUP BY 1, 2`)
	require.NoError(t, err)
	var unfinished []string
	for rows.Next() {
		var status, code string
		var n int
		require.NoError(t, rows.Scan(&status, &code, &n))
		unfinished = append(unfinished, fmt.Sprintf("%d %s (%s)", n, status, code))
	}
	require.NoError(t, rows.Err())
	// Every succeeded job's transcript comes from one epoch and is complete.
	var broken int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs j WHERE j.status = 'succeeded' AND
		(SELECT count(*) FROM segments s WHERE s.job_id = j.id AND s.epoch = j.epoch) <> 2`).Scan(&broken))

	// Time to resume: for a node fault, until another node claimed the jobs
	// the node held; for core and Postgres, until the system finished a job.
	// A late write accepted would show as a job the paused node held that
	// still ended under the node's epoch, after the fault.
	resume := map[string][]time.Duration{}
	lateAccepted := 0
	for _, f := range faults {
		var first *time.Time
		if f.jobs != nil {
			held := slices.Collect(maps.Keys(f.jobs))
			require.NoError(t, conn.QueryRow(ctx, `SELECT max(transcribing_at) FROM jobs WHERE id::text = ANY($1) AND transcribing_at > $2`, held, f.at).Scan(&first))
		}
		if f.kind == faultSIGSTOP {
			for id, epoch := range f.jobs {
				var n int
				require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE id::text = $1 AND epoch = $2 AND finished_at > $3`, id, epoch, f.at).Scan(&n))
				lateAccepted += n
			}
		}
		if f.jobs == nil {
			require.NoError(t, conn.QueryRow(ctx, `SELECT min(finished_at) FROM jobs WHERE status = 'succeeded' AND finished_at > $1`, f.at).Scan(&first))
		}
		if first != nil {
			resume[f.kind] = append(resume[f.kind], first.Sub(f.at))
		}
	}

	// Redis is only the edge's rate-limit store: while it is down, the edge
	// limits in process and serves every request.
	failedWithoutRedis := 0
	amu.Lock()
	for _, f := range failures {
		for _, w := range redisDown {
			if !f.Before(w[0]) && !f.After(w[1]) {
				failedWithoutRedis++
			}
		}
	}
	amu.Unlock()
	fallback := scrapeCounter("http://"+edgeMetrics+"/metrics", "ytcaption_edge_ratelimit_fallback_total")

	submittedN := len(ids)
	finalisedTwice := int(counters["ytcaption_core_jobs_succeeded_total"]) - succeeded
	refused := int(counters["ytcaption_core_stale_writes_refused_total"])
	var report strings.Builder
	fmt.Fprintf(&report, "chaos: %d nodes, lease %s, %d round(s) of faults\n", nodes, lease, rounds)
	fmt.Fprintf(&report, "  jobs submitted       %d\n", submittedN)
	fmt.Fprintf(&report, "  jobs succeeded       %d\n", succeeded)
	fmt.Fprintf(&report, "  jobs lost            %d %v\n", lost, unfinished)
	fmt.Fprintf(&report, "  finalised twice      %d (negative: successes no scrape saw, between the last one and a restart)\n", finalisedTwice)
	fmt.Fprintf(&report, "  late writes refused  %d (accepted: %d)\n", refused, lateAccepted)
	fmt.Fprintf(&report, "  transcripts broken   %d\n", broken)
	fmt.Fprintf(&report, "  requests failed while Redis was down  %d (rate-limit decisions made locally: %.0f)\n", failedWithoutRedis, fallback)
	kinds := make([]string, 0, len(resume))
	for k := range resume {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		ds := resume[k]
		slices.Sort(ds)
		fmt.Fprintf(&report, "  resume after %-32s p50 %6.2fs  p99 %6.2fs  (n=%d)\n", k+":", pct(ds, 50).Seconds(), pct(ds, 99).Seconds(), len(ds))
	}
	t.Log("\n" + report.String())
	fmt.Println(report.String())

	require.Zero(t, lost, "every accepted job succeeds: %v", unfinished)
	require.Empty(t, unfinished, "every job succeeds")
	require.Equal(t, submittedN, succeeded, "no retried submission created a second job")
	// Core's counters restart at zero with core, so the suite adds up what
	// it scraped just before each restart: a job that succeeds between that
	// scrape and core's exit is in no scrape, and the sum comes out short by
	// it (seen: -1 in one of a few runs). Short is a lost reading, not a
	// finalisation; a job finalised twice makes the sum come out long.
	require.LessOrEqual(t, finalisedTwice, 0, "no job is finalised twice")
	require.Zero(t, broken, "every transcript is whole and from one epoch")
	// The paused node may also fence itself — it stops a job once no
	// heartbeat succeeded for a whole lease — so it need not write late at
	// all; what matters is that nothing it wrote late was taken.
	require.Zero(t, failedWithoutRedis, "a Redis outage fails no request")
	require.Positive(t, fallback, "the edge counted its local rate-limit decisions")
	require.Zero(t, lateAccepted, "no job the paused node held ended under its stale lease")
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (len(ds)*p + 99) / 100
	return ds[min(max(i-1, 0), len(ds)-1)]
}

// submit creates a job; idemKey makes its retries safe: a retry after a
// lost reply gets the same job, never a second one.
func submit(edgeURL, key, idemKey, url string) (string, error) {
	body, _ := json.Marshal(map[string]string{"url": url, "language": "en"})
	req, _ := http.NewRequest(http.MethodPost, edgeURL+"/v1/jobs", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var j struct{ ID string }
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("create job: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return "", err
	}
	return j.ID, nil
}
