package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/redistest"
	"github.com/ytcaption/ytcaption/internal/stacktest"
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
// held: they resume when another node claims them. Other faults resume when
// a job finishes after the fault was lifted (healed).
type fault struct {
	kind   string
	at     time.Time
	healed time.Time
	jobs   map[string]int64 // id → the node's epoch
}

// TestChaos submits jobs through the edge while faults hit the system, then
// checks that every accepted job succeeded exactly once.
func TestChaos(t *testing.T) {
	jobs := envInt("YTCAPTION_CHAOS_JOBS", 40)
	rounds := envInt("YTCAPTION_CHAOS_ROUNDS", 1)
	outage := time.Duration(envInt("YTCAPTION_CHAOS_OUTAGE_SECONDS", 10)) * time.Second
	bins := stacktest.Build(t)
	pg := stacktest.StartPostgres(t)
	blobs := startBlobStore(t)
	rds := redistest.Start(t)
	engine := stacktest.FakeEngine(700 * time.Millisecond)
	defer engine.Close()
	media := httptest.NewServer(http.FileServer(http.Dir(librivox)))
	defer media.Close()
	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooks.Add(1)
	}))
	defer receiver.Close()
	logs := t.TempDir()
	// Core's and the gpu-nodes' work directories share a small disk the
	// suite fills.
	disk, diskFull := smallDisk(t, 256<<20)

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.URL())
	require.NoError(t, err)
	_, err = migrations.Migrate(ctx, sqldb.FromPool(pool))
	require.NoError(t, err)
	st := store.New(sqldb.FromPool(pool))
	u, err := st.EnsureUser(ctx, "chaos", store.RoleUser)
	require.NoError(t, err)
	key, err := st.CreateAPIKey(ctx, u.ID)
	require.NoError(t, err)
	pool.Close() // the suite moves the server; it reconnects per query from here on

	// Two core replicas behind load balancers with health checks: one in
	// front of the edge, one per gpu-node, so a node's link can fail alone.
	type replica struct {
		proc              *stacktest.Process
		addr, metrics, wd string
	}
	cores := make([]*replica, 2)
	for i := range cores {
		r := &replica{addr: fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t)), metrics: fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t)),
			wd: filepath.Join(disk, fmt.Sprintf("core-%d", i))}
		r.proc = stacktest.NewProcess(t, logs, fmt.Sprintf("core-%d", i), bins+"/ytcaption-core", "serve", "--addr", r.addr,
			"--metrics-addr", r.metrics,
			"--postgres-url", pg.FailoverURL(), "--s3-endpoint", blobs.srv.Endpoint, "--s3-access-key", blobs.srv.AccessKey, "--s3-secret-key", blobs.srv.SecretKey,
			"--service-token", "chaos-service", "--node-tokens", "chaos-node", "--allow-private-urls",
			"--lease", lease.String(), "--heartbeat-interval", "1s", "--work-dir", r.wd, "--log-format", "text")
		cores[i] = r
	}
	edgeLink := startFaultProxy(t, "/health/live", cores[0].addr, cores[1].addr)
	edgePort := stacktest.FreePort(t)
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", edgePort)
	edgeMetrics := fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t))
	edge := stacktest.NewProcess(t, logs, "edge", bins+"/ytcaption-edge", "--addr", fmt.Sprintf("127.0.0.1:%d", edgePort),
		"--connect-addr", fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t)),
		"--core-url", edgeLink.url(), "--service-token", "chaos-service", "--redis-url", rds.URL(), "--metrics-addr", edgeMetrics, "--log-format", "text")
	var agents []*stacktest.Process
	var links []*faultProxy
	var nodeDirs []string
	for i := range nodes {
		link := startFaultProxy(t, "/health/live", cores[0].addr, cores[1].addr)
		wd := filepath.Join(disk, fmt.Sprintf("gpu-node-%d", i))
		links, nodeDirs = append(links, link), append(nodeDirs, wd)
		agents = append(agents, stacktest.NewProcess(t, logs, fmt.Sprintf("gpu-node-%d", i), bins+"/ytcaption-gpu-node",
			"--core-url", link.url(), "--node-token", "chaos-node", "--node-id", fmt.Sprintf("node-%d", i), "--engine", "openai",
			"--openai-base-url", engine.URL, "--work-dir", wd, "--metrics-addr", "", "--log-format", "text"))
	}
	for _, c := range cores {
		c.proc.Start()
	}
	edge.Start()
	for _, a := range agents {
		a.Start()
	}
	stacktest.WaitReady(t, edgeURL, "the stack")

	// Submit at a steady rate across the fault schedule, so work is in flight
	// at every fault. A submission refused while core restarts is retried:
	// only accepted jobs count.
	faultPeriod := time.Duration(rounds) * (100*time.Second + 2*outage)
	var accepted []string
	var failures []time.Time // submissions refused or failed, for whatever reason
	var amu sync.Mutex
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		every := faultPeriod / time.Duration(jobs)
		for i := range jobs {
			for {
				// Distinct media: no transcript cache hits. The webhook makes
				// every finalisation leave a row in the outbox, so the
				// database tells whether any job was finalised twice.
				id, err := submit(edgeURL, key, fmt.Sprintf("chaos-%d", i),
					fmt.Sprintf("%s/sense_and_sensibility_01_austen_64kb-0880.wav?n=%d", media.URL, i), receiver.URL)
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

	query := func(q string, args []any, dest ...any) {
		t.Helper()
		deadline := time.Now().Add(2*outage + time.Minute)
		for {
			c, err := pgx.Connect(ctx, pg.URL())
			if err == nil {
				err = c.QueryRow(ctx, q, args...).Scan(dest...)
				c.Close(ctx)
			}
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("chaos: %s: %v", q, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// busy picks a node that holds a job now, so the fault hits work in
	// flight, and returns the jobs it holds.
	busy := func() (int, map[string]int64) {
		for range 50 {
			for _, i := range rand.Perm(nodes) {
				var ids []string
				var epochs []int64
				query(`SELECT coalesce(array_agg(id::text), '{}'), coalesce(array_agg(epoch), '{}') FROM jobs WHERE status = 'transcribing' AND lease_owner = $1`,
					[]any{fmt.Sprintf("node-%d", i)}, &ids, &epochs)
				if len(ids) > 0 {
					held := map[string]int64{}
					for k, id := range ids {
						held[id] = epochs[k]
					}
					return i, held
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		return rand.N(nodes), nil
	}
	// leader is the replica that last became the rescuer's leader.
	leader := func() int {
		best, at := 0, -1
		for i, c := range cores {
			b, _ := os.ReadFile(filepath.Join(logs, fmt.Sprintf("core-%d.log", i)))
			s := string(b)
			if k := strings.LastIndex(s, "--- restarted ---"); k >= 0 {
				s = s[k:]
			}
			if strings.Contains(s, "became leader") && !strings.Contains(s[strings.LastIndex(s, "became leader"):], "lost leadership") && len(s) > at {
				best, at = i, len(s)
			}
			_ = c
		}
		return best
	}
	restart := func(r *replica, sig syscall.Signal) {
		r.proc.Stop(sig)
		fmt.Fprintln(r.proc.Log(), "--- restarted ---")
		r.proc.Start()
	}
	var faults []fault
	var redisDown [][2]time.Time // when Redis was stopped
	// hit injects a fault, holds it for d and lifts it; pick (for a fault
	// on a gpu-node) chooses the node and names the jobs it holds then.
	hit := func(kind string, pick func() map[string]int64, inject func(), d time.Duration, lift func()) {
		time.Sleep(3 * time.Second)
		var held map[string]int64
		if pick != nil {
			held = pick()
		}
		f := fault{kind: kind, at: time.Now(), jobs: held}
		inject()
		time.Sleep(d)
		lift()
		f.healed = time.Now()
		faults = append(faults, f)
	}
	nothing := func() {}
	var i int // the gpu-node a node fault hits
	node := func() map[string]int64 {
		var held map[string]int64
		i, held = busy()
		return held
	}
	for range rounds {
		hit("kill -9 gpu-node", node, func() { agents[i].Stop(syscall.SIGKILL) }, 0, func() { agents[i].Start() })
		hit(faultSIGSTOP, node, func() { agents[i].Signal(syscall.SIGSTOP) }, lease+2*time.Second, func() { agents[i].Signal(syscall.SIGCONT) })

		hit("kill -9 core leader", nil, func() { restart(cores[leader()], syscall.SIGKILL) }, 0, nothing)
		hit("SIGTERM core", nil, func() { restart(cores[leader()], syscall.SIGTERM) }, 0, nothing)
		r := cores[rand.N(len(cores))]
		hit("SIGSTOP core replica past a lease", nil, func() { r.proc.Signal(syscall.SIGSTOP) }, lease+2*time.Second, func() { r.proc.Signal(syscall.SIGCONT) })

		hit("restart postgres", nil, pg.Restart, 0, nothing)
		hit(fmt.Sprintf("postgres unreachable %s", outage), nil, pg.Stop, outage, pg.Start)
		hit("postgres fails over to another address", nil, pg.Failover, 0, nothing)

		// The steady submissions may fall either side of a 3 s outage, so a
		// read goes through the edge while Redis is down, to be answered.
		hit("stop redis", nil, func() { rds.Stop(); readDuring(edgeURL, key, &amu, &failures) }, 3*time.Second, rds.Start)
		redisDown = append(redisDown, [2]time.Time{faults[len(faults)-1].at, faults[len(faults)-1].healed})

		hit("blob store stopped", nil, blobs.stop, 5*time.Second, blobs.start)
		hit("blob store paused", nil, blobs.pause, 5*time.Second, blobs.cont)
		if diskFull {
			var free func()
			hit("disk full (core and gpu-nodes)", nil, func() { free = fill(t, disk) }, 5*time.Second, func() { free() })
		}

		hit("gpu-node link 300 ms slow", node, func() { links[i].set(linkSlow, 300*time.Millisecond) }, 5*time.Second, func() { links[i].set(linkUp, 0) })
		hit("gpu-node link blackholed past a lease", node, func() { links[i].set(linkBlackhole, 0) }, lease+2*time.Second, func() { links[i].set(linkUp, 0) })
		hit("gpu-node link cut past a lease", node, func() { links[i].set(linkCut, 0) }, lease+2*time.Second, func() { links[i].set(linkUp, 0) })
		hit("edge-core link blackholed", nil, func() { edgeLink.set(linkBlackhole, 0) }, 3*time.Second, func() { edgeLink.set(linkUp, 0) })
	}
	<-submitted

	// Wait for every accepted job to end.
	var open int
	deadline := time.Now().Add(5 * time.Minute)
	for {
		query(`SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')`, nil, &open)
		if open == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	conn := pg.Conn(ctx)
	defer conn.Close(ctx)

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
	// Why the jobs that failed for good failed: every attempt's error, by
	// the fault in force when it happened.
	rows, err = conn.Query(ctx, `SELECT a.stage, a.error_code, left(a.error_message, 160), a.at FROM job_attempts a
		JOIN jobs j ON j.id = a.job_id WHERE j.status <> 'succeeded' ORDER BY a.at`)
	require.NoError(t, err)
	why := map[string]int{}
	for rows.Next() {
		var stage, code, msg string
		var at time.Time
		require.NoError(t, rows.Scan(&stage, &code, &msg, &at))
		during := "no fault"
		for _, f := range faults {
			if !at.Before(f.at) && !at.After(f.healed.Add(lease)) {
				during = f.kind
			}
		}
		why[fmt.Sprintf("%s: %s %s: %s", during, stage, code, msg)]++
	}
	require.NoError(t, rows.Err())
	// Every succeeded job's transcript comes from one epoch and is complete.
	var broken int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs j WHERE j.status = 'succeeded' AND
		(SELECT count(*) FROM segments s WHERE s.job_id = j.id AND s.epoch = j.epoch) <> 2`).Scan(&broken))
	// Finalisation is counted in the database: the trigger that finishes a
	// job writes its webhook into the outbox, once per finalisation.
	var finalisedTwice, notFinalised int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT job_id FROM notifications WHERE channel = 'webhook'
		GROUP BY job_id HAVING count(*) > 1) x`).Scan(&finalisedTwice))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs j WHERE j.status = 'succeeded' AND
		NOT EXISTS (SELECT 1 FROM notifications n WHERE n.job_id = j.id)`).Scan(&notFinalised))

	// Time to resume: for a node fault, until the jobs the node held moved
	// on; for any other, until a job finished after the fault was
	// lifted. A late write accepted would show as a job the paused node held
	// that still ended under the node's epoch, after the fault.
	resume := map[string][]time.Duration{}
	lateAccepted := 0
	for _, f := range faults {
		var first *time.Time
		from := f.healed
		if f.jobs != nil {
			from = f.at
			held := slices.Collect(maps.Keys(f.jobs))
			// Each held job resumes when another node claims it or, where
			// the node kept it (a slow link), when it finishes.
			require.NoError(t, conn.QueryRow(ctx, `SELECT max(least(CASE WHEN transcribing_at > $2 THEN transcribing_at END, finished_at))
				FROM jobs WHERE id::text = ANY($1)`, held, f.at).Scan(&first))
			for id, epoch := range f.jobs {
				var n int
				require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE id::text = $1 AND epoch = $2 AND finished_at > $3`, id, epoch, f.healed).Scan(&n))
				lateAccepted += n
			}
		} else {
			require.NoError(t, conn.QueryRow(ctx, `SELECT min(finished_at) FROM jobs WHERE status = 'succeeded' AND finished_at > $1`, from).Scan(&first))
		}
		if first != nil {
			resume[f.kind] = append(resume[f.kind], first.Sub(from))
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
	failedSubmissions := len(failures)
	amu.Unlock()
	fallback := scrapeCounter("http://"+edgeMetrics+"/metrics", "ytcaption_edge_ratelimit_fallback_total")

	// Nothing is left behind: no file in a work directory, no blob that no
	// job names.
	// A replica that lost a download's lease during a fault learns so at its
	// next renewal, or fences itself a lease later, and only then removes
	// its files: the work directories are given that long (two leases and a
	// renewal's bound, with room) to empty before a file counts as left.
	leftOver := func() []string {
		var files []string
		for _, d := range append([]string{cores[0].wd, cores[1].wd}, nodeDirs...) {
			_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					files = append(files, p)
				}
				return nil
			})
		}
		return files
	}
	leftFiles := leftOver()
	for wait := time.Now().Add(30 * time.Second); len(leftFiles) > 0 && time.Now().Before(wait); leftFiles = leftOver() {
		time.Sleep(250 * time.Millisecond)
	}
	orphans := orphanBlobs(t, blobs, conn)

	submittedN := len(ids)
	var report strings.Builder
	fmt.Fprintf(&report, "chaos: 2 core replicas, %d gpu-nodes, lease %s, %d round(s) of %d faults, Postgres outage %s\n", nodes, lease, rounds, len(faults)/rounds, outage)
	fmt.Fprintf(&report, "  jobs submitted       %d (submissions refused and retried: %d)\n", submittedN, failedSubmissions)
	fmt.Fprintf(&report, "  jobs succeeded       %d\n", succeeded)
	fmt.Fprintf(&report, "  jobs lost            %d %v\n", lost, unfinished)
	for _, w := range slices.Sorted(maps.Keys(why)) {
		fmt.Fprintf(&report, "    failed attempt x%d during %s\n", why[w], w)
	}
	fmt.Fprintf(&report, "  finalised twice      %d (succeeded with no finalisation on record: %d; webhooks delivered: %d)\n", finalisedTwice, notFinalised, hooks.Load())
	fmt.Fprintf(&report, "  late writes accepted %d\n", lateAccepted)
	fmt.Fprintf(&report, "  transcripts broken   %d\n", broken)
	fmt.Fprintf(&report, "  requests failed while Redis was down  %d (rate-limit decisions made locally: %.0f)\n", failedWithoutRedis, fallback)
	fmt.Fprintf(&report, "  files left in work directories %d %v\n", len(leftFiles), leftFiles[:min(len(leftFiles), 5)])
	fmt.Fprintf(&report, "  blobs no job names   %d %v\n", len(orphans), orphans[:min(len(orphans), 5)])
	kinds := make([]string, 0, len(resume))
	for k := range resume {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		ds := resume[k]
		slices.Sort(ds)
		fmt.Fprintf(&report, "  resume after %-42s p50 %6.2fs  p99 %6.2fs  (n=%d)\n", k+":", pct(ds, 50).Seconds(), pct(ds, 99).Seconds(), len(ds))
	}
	t.Log("\n" + report.String())
	fmt.Println(report.String())

	require.Zero(t, lost, "every accepted job succeeds: %v", unfinished)
	require.Empty(t, unfinished, "every job succeeds")
	require.Equal(t, submittedN, succeeded, "no retried submission created a second job")
	require.Zero(t, finalisedTwice, "no job is finalised twice")
	require.Zero(t, notFinalised, "every success was finalised through the trigger")
	require.Zero(t, broken, "every transcript is whole and from one epoch")
	require.Zero(t, failedWithoutRedis, "a Redis outage fails no request")
	require.Positive(t, fallback, "the edge counted its local rate-limit decisions")
	// The paused node may also fence itself — it stops a job once no
	// heartbeat succeeded for a whole lease — so it need not write late at
	// all; what matters is that nothing it wrote late was taken.
	require.Zero(t, lateAccepted, "no job a faulted node held ended under its stale lease")
	require.Empty(t, leftFiles, "no temporary file outlives its job")
	require.Empty(t, orphans, "no blob outlives what names it")
}

// orphanBlobs lists the keys in the bucket that no job names.
func orphanBlobs(t *testing.T, b *blobStore, conn *pgx.Conn) []string {
	t.Helper()
	ctx := context.Background()
	st, err := blob.New(ctx, blob.Config{Endpoint: b.srv.Endpoint, AccessKey: b.srv.AccessKey, SecretKey: b.srv.SecretKey, Bucket: "ytcaption"})
	require.NoError(t, err)
	keys, err := st.Keys(ctx)
	require.NoError(t, err)
	var named []string
	require.NoError(t, conn.QueryRow(ctx, `SELECT coalesce(array_agg(audio_key), '{}') FROM jobs WHERE audio_key <> ''`).Scan(&named))
	var out []string
	for _, k := range keys {
		if !slices.Contains(named, k) {
			out = append(out, k)
		}
	}
	return out
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
// readDuring lists the caller's jobs through the edge once, and records the
// time in failures if it is not answered.
func readDuring(edgeURL, key string, mu *sync.Mutex, failures *[]time.Time) {
	req, _ := http.NewRequest(http.MethodGet, edgeURL+"/v1/jobs?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
	}
	mu.Lock()
	*failures = append(*failures, time.Now())
	mu.Unlock()
}

func submit(edgeURL, key, idemKey, url, webhook string) (string, error) {
	body, _ := json.Marshal(map[string]string{"url": url, "language": "en", "webhook_url": webhook})
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
