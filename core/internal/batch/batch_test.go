package batch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/egress"
)

func TestSelect(t *testing.T) {
	t.Parallel()
	yt := func(id, date string) ytdlp.Entry {
		return ytdlp.Entry{ID: id, URL: "https://www.youtube.com/watch?v=" + id, UploadDate: date}
	}
	a, b, c := yt("aaaaaaaaaaa", "20240101"), yt("bbbbbbbbbbb", "20240301"), yt("ccccccccccc", "20240201")
	live := yt("ddddddddddd", "20240401")
	live.LiveStatus = "is_live"
	undated := yt("eeeeeeeeeee", "")
	ids := func(es []store.BatchEntry) (out []string) {
		for _, e := range es {
			out = append(out, e.CanonicalURL[len("https://www.youtube.com/watch?v="):])
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		entries []ytdlp.Entry
		batch   store.Batch
		want    []string
		skipped int
	}{
		{"playlist order, capped", []ytdlp.Entry{a, b, c}, store.Batch{MaxItems: 2, Order: store.OrderPlaylist}, []string{"aaaaaaaaaaa", "bbbbbbbbbbb"}, 1},
		{"newest first", []ytdlp.Entry{a, b, c}, store.Batch{MaxItems: 10, Order: store.OrderNewest}, []string{"bbbbbbbbbbb", "ccccccccccc", "aaaaaaaaaaa"}, 0},
		{"newest keeps the listing's order when a date is missing", []ytdlp.Entry{a, undated, b}, store.Batch{MaxItems: 10, Order: store.OrderNewest}, []string{"aaaaaaaaaaa", "eeeeeeeeeee", "bbbbbbbbbbb"}, 0},
		{"date range drops undated entries", []ytdlp.Entry{a, b, c, undated}, store.Batch{MaxItems: 10, After: "20240115", Before: "20240301"}, []string{"bbbbbbbbbbb", "ccccccccccc"}, 2},
		{"live streams and repeats skipped", []ytdlp.Entry{a, live, a}, store.Batch{MaxItems: 10}, []string{"aaaaaaaaaaa"}, 2},
		{"URLs a job would refuse skipped", []ytdlp.Entry{{URL: "https://www.youtube.com/playlist?list=PL1"}, {URL: "http://127.0.0.1/a.wav"}, a}, store.Batch{MaxItems: 10}, []string{"aaaaaaaaaaa"}, 2},
	} {
		got, skipped := Select(tc.entries, tc.batch, egress.Policy{})
		require.Equal(t, tc.want, ids(got), tc.name)
		require.Equal(t, tc.skipped, skipped, tc.name)
	}
}

// page serves a page with n <video>s on loopback, what yt-dlp's generic
// extractor lists as a playlist of n entries.
func page(t *testing.T, n int) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/talks.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head><title>Talks</title></head><body>")
		for i := range n {
			fmt.Fprintf(w, "<video controls src=\"/talk-%d.wav\"></video>\n", i)
		}
		fmt.Fprint(w, "</body></html>")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/talks.html"
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestACrashMidEnumerationLeavesOneJobPerEntry: an enumerator stopped after
// two of five children (its context cancelled, as by a crash) and another
// that claims the batch once the first one's lease ran out leave exactly
// five children, one per <video> of the page, on both databases.
func TestACrashMidEnumerationLeavesOneJobPerEntry(t *testing.T) {
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it)")
	}
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		url := page(t, 5)
		ctx := context.Background()
		first, cancelFirst := context.WithCancel(ctx)
		defer cancelFirst()
		var added atomic.Int32
		s := store.New(env.DB, store.OnChange(func(_ context.Context, c store.Change) {
			if c.From == "" && added.Add(1) == 2 {
				cancelFirst() // the crash, after the second child
			}
		}))
		b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: env.User.ID, URL: url, CanonicalURL: url, MaxItems: 10})
		require.NoError(t, err)

		policy := egress.Policy{AllowPrivate: true}
		yt := ytdlp.New(ytdlp.Config{Extractors: "generic,html5", Policy: policy})
		// Lease long enough for one listing, short enough to wait out.
		cfg := Config{Owner: "core-1", Lease: 4 * time.Second, PollFallback: 50 * time.Millisecond, Group: 1, Policy: policy, WorkDir: t.TempDir()}
		New(discard(), cfg, Deps{Store: s, YtDlp: yt}).Run(first)
		require.EqualValues(t, 2, added.Load())
		got, err := s.GetBatch(ctx, "", b.ID)
		require.NoError(t, err)
		require.Equal(t, store.BatchEnumerating, got.Status)
		require.Equal(t, 2, got.Counts.Total)

		second, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer stop()
		cfg.Owner = "core-2"
		wg.Go(func() { New(discard(), cfg, Deps{Store: s, YtDlp: yt}).Run(second) })
		require.Eventually(t, func() bool {
			got, err = s.GetBatch(ctx, "", b.ID)
			require.NoError(t, err)
			return got.Status == store.BatchRunning
		}, 30*time.Second, 20*time.Millisecond)
		require.Equal(t, 2, got.Attempt)
		require.Equal(t, 5, got.Entries)
		require.Equal(t, store.BatchCounts{Total: 5, Queued: 5}, got.Counts)
		jobs, err := s.ListBatchJobs(ctx, env.User.ID, b.ID, 100, 0)
		require.NoError(t, err)
		urls := map[string]bool{}
		for _, j := range jobs {
			urls[j.CanonicalURL] = true
			require.Equal(t, job.SourceHTTP, j.SourceKind, "a <video>'s media is a direct file")
		}
		require.Len(t, urls, 5, "one child per entry")
	})
}

func TestAFailedListingFailsTheBatch(t *testing.T) {
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it)")
	}
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		ctx := context.Background()
		url := page(t, 2)
		// The default policy refuses loopback: the page is never read.
		b, _, err := env.Store.CreateBatch(ctx, store.NewBatch{UserID: env.User.ID, URL: url, CanonicalURL: url})
		require.NoError(t, err)
		run, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer stop()
		yt := ytdlp.New(ytdlp.Config{Extractors: "generic,html5"})
		wg.Go(func() {
			New(discard(), Config{Owner: "core-1", PollFallback: 50 * time.Millisecond, WorkDir: t.TempDir()}, Deps{Store: env.Store, YtDlp: yt}).Run(run)
		})
		var got store.Batch
		require.Eventually(t, func() bool {
			got, err = env.Store.GetBatch(ctx, "", b.ID)
			require.NoError(t, err)
			return got.Status != store.BatchEnumerating
		}, 30*time.Second, 20*time.Millisecond)
		require.Equal(t, store.BatchFailed, got.Status)
		require.Equal(t, job.CodeSourceForbidden, got.ErrorCode)
	})
}
