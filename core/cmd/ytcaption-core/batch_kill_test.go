package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/miniotest"
	"github.com/ytcaption/ytcaption/internal/pgtest"
)

// TestKill9MidEnumerationLeavesOneJobPerEntry runs the real ytcaption-core
// binary, lets it claim a batch of a page with five <video>s and add two of
// its jobs, and kills it (SIGKILL) while its yt-dlp reads the page. A second
// core takes the batch over once the lease has run out, and the batch ends
// up with exactly one job per entry: the two the dead core added, and the
// three it had not.
func TestKill9MidEnumerationLeavesOneJobPerEntry(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it)")
	}
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "ytcaption-core")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))

	// The page: the first read blocks until the test ends (the dead core's
	// yt-dlp, an orphan now, waits on it); later reads answer.
	var reads atomic.Int32
	firstRead := make(chan struct{})
	release := make(chan struct{})
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/talks.html" {
			http.NotFound(w, r)
			return
		}
		if reads.Add(1) == 1 {
			close(firstRead)
			<-release
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head><title>Talks</title></head><body>")
		for i := range 5 {
			fmt.Fprintf(w, "<video controls src=\"/talk-%d.wav\"></video>\n", i)
		}
		fmt.Fprint(w, "</body></html>")
	}))
	// The blocked read is let go before the server waits for its handlers.
	t.Cleanup(func() { close(release); page.Close() })

	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := sqldb.FromPool(pool)
	_, err = migrations.Migrate(ctx, db)
	require.NoError(t, err)
	s := store.New(db)
	u, err := s.EnsureUser(ctx, "alice", store.RoleUser)
	require.NoError(t, err)
	url := page.URL + "/talks.html"
	b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: u.ID, URL: url, CanonicalURL: url, MaxItems: 10})
	require.NoError(t, err)

	minio := miniotest.Start(t)
	startCore := func(name string) *exec.Cmd {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "serve", "--addr", addr, "--metrics-addr", "", "--postgres-url", dbURL,
			"--s3-endpoint", minio.Endpoint, "--s3-access-key", minio.AccessKey, "--s3-secret-key", minio.SecretKey, "--s3-bucket", "kill9",
			"--service-token", "svc", "--node-tokens", "node", "--allow-private-urls", "--yt-dlp-extractors", "generic,html5",
			"--lease", "1s", "--work-dir", t.TempDir())
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		logs, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
		require.NoError(t, err)
		cmd.Stdout, cmd.Stderr = logs, logs
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logs.Close() })
		return cmd
	}

	first := startCore("core-1")
	select {
	case <-firstRead: // core-1 claimed the batch and its yt-dlp is reading the page
	case <-time.After(60 * time.Second):
		t.Fatal("core-1 never read the page")
	}
	claimed, err := s.GetBatch(ctx, "", b.ID)
	require.NoError(t, err)
	require.Equal(t, store.BatchEnumerating, claimed.Status)
	// What core-1 had added before it died: its first two entries, under its claim.
	var done []store.BatchEntry
	for i := range 2 {
		u := fmt.Sprintf("%s/talk-%d.wav", page.URL, i)
		done = append(done, store.BatchEntry{URL: u, CanonicalURL: u, SourceKind: job.SourceHTTP})
	}
	n, err := s.AddBatchJobs(ctx, b.ID, claimed.Attempt, 0, done)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, first.Process.Kill()) // SIGKILL: no shutdown, no hand-back
	_ = first.Wait()

	startCore("core-2")
	var got store.Batch
	require.Eventually(t, func() bool {
		got, err = s.GetBatch(ctx, "", b.ID)
		require.NoError(t, err)
		return got.Status != store.BatchEnumerating
	}, 90*time.Second, 100*time.Millisecond, "core-2 never finished the enumeration")
	require.Equal(t, store.BatchRunning, got.Status, "%+v", got)
	require.Equal(t, claimed.Attempt+1, got.Attempt, "taken over once")
	require.Equal(t, 5, got.Entries)
	jobs, err := s.ListBatchJobs(ctx, u.ID, b.ID, 100, 0)
	require.NoError(t, err)
	seen := map[string]int{}
	for _, j := range jobs {
		seen[j.CanonicalURL]++
	}
	require.Len(t, jobs, 5, "one job per entry")
	for i := range 5 {
		require.Equal(t, 1, seen[fmt.Sprintf("%s/talk-%d.wav", page.URL, i)], "talk-%d", i)
	}
}
