package fetch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/media"
	"github.com/ytcaption/ytcaption/core/internal/safehttp"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/wav"
)

// These tests drive the stage the way Run does — claim a queued job from the
// store, process it — on each database driver, with real ffmpeg, a directory
// blob store and local HTTP servers serving the media (good or bad). They
// check what a user and an operator can see: the job's status and error
// code, its recorded attempts, the stored blobs and the work directory.

// harness is a stage on one driver's store.
type harness struct {
	env     storetest.Env
	stage   *Stage
	blobs   *blob.Dir
	bus     *dispatch.Bus
	youtube *breaker.Breaker
	blob    *breaker.Breaker
}

const testOwner = "core-test"

// newHarness returns a stage on a fresh database. cfg's zero fields get
// test-sized defaults: 10 s of audio at most, 256 KiB downloads, no chunks.
func newHarness(t *testing.T, open storetest.Maker, cfg Config) *harness {
	t.Helper()
	env := open(t)
	blobs, err := blob.OpenDir(t.TempDir(), "")
	require.NoError(t, err)
	cfg.Owner = testOwner
	cfg.WorkDir = t.TempDir()
	if cfg.MaxDuration == 0 {
		cfg.MaxDuration = 10 * time.Second
	}
	if cfg.MaxDownloadBytes == 0 {
		cfg.MaxDownloadBytes = 256 << 10
	}
	if cfg.ChunkLength == 0 {
		cfg.ChunkLength = -1
	}
	if cfg.BreakerDefer == 0 {
		cfg.BreakerDefer = time.Hour // deferred jobs must visibly not be claimable at once
	}
	log := slog.New(slog.DiscardHandler)
	h := &harness{env: env, blobs: blobs, bus: dispatch.NewBus(log, env.DB, "test"),
		youtube: breaker.New(nil, "youtube", breaker.Config{Failures: 2, Cooldown: time.Hour}),
		blob:    breaker.New(nil, "blob", breaker.Config{Failures: 2, Cooldown: time.Hour})}
	// The stage's store announces its changes on the bus, as core's does;
	// env.Store, which the tests drive, announces nothing unless they say.
	h.stage = New(log, cfg, Deps{
		Store: store.New(env.DB, store.OnChange(h.bus.Announce)), Blobs: blobs, Media: media.New(media.Config{}),
		HTTP: safehttp.NewClient(safehttp.Config{Policy: egress.Policy{AllowPrivate: true}}),
		Bus:  h.bus, YouTube: h.youtube, Blob: h.blob,
	})
	return h
}

// eachDriver runs test on PostgreSQL and SQLite in parallel subtests.
func eachDriver(t *testing.T, test func(t *testing.T, open storetest.Maker)) {
	t.Parallel()
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		test(t, open)
	})
}

// create queues a job for url; maxAttempts 0 is the store's default.
func (h *harness) create(t *testing.T, kind job.SourceKind, url string, maxAttempts int) job.Job {
	t.Helper()
	return h.insert(t, store.NewJob{URL: url, CanonicalURL: url, SourceKind: kind, MaxAttempts: maxAttempts})
}

// insert queues n as alice's job.
func (h *harness) insert(t *testing.T, n store.NewJob) job.Job {
	t.Helper()
	n.UserID = h.env.User.ID
	j, err := h.env.Store.CreateJob(context.Background(), n)
	require.NoError(t, err)
	return j
}

// claim takes the next queued job, as a worker does, and requires it is want.
func (h *harness) claim(t *testing.T, want string) job.Job {
	t.Helper()
	j, ok, err := h.env.Store.ClaimQueued(context.Background(), testOwner, h.stage.cfg.Lease)
	require.NoError(t, err)
	require.True(t, ok, "no job to claim")
	require.Equal(t, want, j.ID)
	return j
}

// fetchOne queues url, claims it and processes it to the end.
func (h *harness) fetchOne(t *testing.T, url string, maxAttempts int) job.Job {
	t.Helper()
	j := h.create(t, job.SourceHTTP, url, maxAttempts)
	h.stage.process(context.Background(), h.claim(t, j.ID))
	return h.get(t, j.ID)
}

func (h *harness) get(t *testing.T, id string) job.Job {
	t.Helper()
	j, err := h.env.Store.GetJob(context.Background(), "", id)
	require.NoError(t, err)
	return j
}

func (h *harness) attempts(t *testing.T, id string) []store.Attempt {
	t.Helper()
	a, err := h.env.Store.Attempts(context.Background(), id)
	require.NoError(t, err)
	return a
}

func (h *harness) keys(t *testing.T) []string {
	t.Helper()
	k, err := h.blobs.Keys(context.Background())
	require.NoError(t, err)
	return k
}

// requireClean: no download leaves a file in the work directory.
func (h *harness) requireClean(t *testing.T) {
	t.Helper()
	left, err := os.ReadDir(h.stage.cfg.WorkDir)
	require.NoError(t, err)
	require.Empty(t, left, "the work directory is cleaned up")
}

// requireClaimableNow: the job is queued and the next claim takes it.
func (h *harness) requireClaimableNow(t *testing.T, id string) job.Job {
	t.Helper()
	return h.claim(t, id)
}

// requireNotClaimable: nothing is claimable (a deferred job waits).
func (h *harness) requireNotClaimable(t *testing.T) {
	t.Helper()
	_, ok, err := h.env.Store.ClaimQueued(context.Background(), testOwner, time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "a job was claimable")
}

// waitFor fails the test if ch is not closed within a generous bound: a
// hang is a bug, and the bound only keeps it from stalling the suite.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// media are the files the servers hand out, made once per test by ffmpeg.
type mediaFiles struct{ dir string }

func makeMedia(t *testing.T) mediaFiles {
	t.Helper()
	dir := t.TempDir()
	// 3 s of sine in Ogg Vorbis, with a title the stage records.
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=3", "-c:a", "libvorbis",
		"-metadata", "title=A sine", filepath.Join(dir, "good.ogg"))
	// The same samples in two lossless containers: stored once.
	for _, name := range []string{"same.wav", "same.flac"} {
		ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=16000:duration=2", "-ac", "1", filepath.Join(dir, name))
	}
	// 20 s, over the harness's 10 s limit, and it says so.
	ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=20", "-c:a", "libvorbis", filepath.Join(dir, "long.ogg"))
	// 25 s for chunking.
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=25", "-c:a", "libvorbis", filepath.Join(dir, "chunky.ogg"))
	// A video with no audio stream.
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5", "-an", "-c:v", "mpeg4", "-f", "matroska", filepath.Join(dir, "silent-film.mkv"))
	// A WAV with a header and no samples: an audio stream holding nothing.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "no-samples.wav"), wav.Header(0), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("these are not the media you are looking for\n"), 0o644))
	return mediaFiles{dir}
}

func (m mediaFiles) path(name string) string { return filepath.Join(m.dir, name) }

// badSource serves the media files and the failures a source can answer with.
func badSource(t *testing.T, m mediaFiles, maxBytes int64) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir(m.dir))))
	for path, code := range map[string]int{"/404": 404, "/410": 410, "/401": 401, "/403": 403, "/418": 418, "/503": 503, "/429": 429} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
	}
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Content-Type", "audio/ogg") })
	big := bytes.Repeat([]byte{0x55}, int(maxBytes)+1)
	mux.HandleFunc("/big-declared", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(big) })
	mux.HandleFunc("/big-streamed", func(w http.ResponseWriter, r *http.Request) {
		// Chunked, with no Content-Length: the cap is found by counting.
		for i := 0; i < len(big); i += 4096 {
			_, _ = w.Write(big[i:min(i+4096, len(big))])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/cut-short", func(w http.ResponseWriter, r *http.Request) {
		// Promises 100 kB, sends 1 kB and hangs up.
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write(bytes.Repeat([]byte{1}, 1000))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr + "/a.ogg"
}

// TestEveryFailureCodeTheSourceCanCause: each bad answer or bad file a
// source can give fails the job with its code; permanent ones at once,
// retryable ones after the job's attempts (here 1) with the code recorded on
// the attempt. Nothing is stored and nothing is left in the work directory.
func TestEveryFailureCodeTheSourceCanCause(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		h := newHarness(t, open, Config{})
		src := badSource(t, m, h.stage.cfg.MaxDownloadBytes)
		for _, c := range []struct {
			name, url string
			code      string
			retryable bool
		}{
			{"404", src + "/404", job.CodeSourceNotFound, false},
			{"410", src + "/410", job.CodeSourceNotFound, false},
			{"401", src + "/401", job.CodeSourceForbidden, false},
			{"403", src + "/403", job.CodeSourceForbidden, false},
			{"418", src + "/418", job.CodeDownloadFailed, false},
			{"503", src + "/503", job.CodeDownloadFailed, true},
			{"429", src + "/429", job.CodeDownloadFailed, true},
			{"connection refused", closedPort(t), job.CodeDownloadFailed, true},
			{"body cut short", src + "/cut-short", job.CodeDownloadFailed, true},
			{"declared too large", src + "/big-declared", job.CodeMediaTooLarge, false},
			{"streamed too large", src + "/big-streamed", job.CodeMediaTooLarge, false},
			{"empty body", src + "/empty", job.CodeEmptyMedia, false},
			{"no samples", src + "/files/no-samples.wav", job.CodeEmptyMedia, false},
			{"text", src + "/files/notes.txt", job.CodeNotMedia, false},
			{"video without audio", src + "/files/silent-film.mkv", job.CodeNotMedia, false},
			{"too long", src + "/files/long.ogg", job.CodeTooLong, false},
		} {
			j := h.fetchOne(t, c.url, 1)
			require.Equal(t, job.StatusFailed, j.Status, c.name)
			a := h.attempts(t, j.ID)
			require.Len(t, a, 1, c.name)
			require.Equal(t, c.code, a[0].ErrorCode, "%s: the attempt's code (%s)", c.name, a[0].ErrorMessage)
			require.Equal(t, "download", a[0].Stage, c.name)
			if c.retryable {
				require.Equal(t, job.CodeAttemptsExceeded, j.ErrorCode, c.name)
				require.Contains(t, j.ErrorMessage, c.code, c.name)
			} else {
				require.Equal(t, c.code, j.ErrorCode, c.name)
			}
			require.NotEmpty(t, j.ErrorMessage, c.name)
			require.Empty(t, j.AudioKey, c.name)
		}
		require.Empty(t, h.keys(t), "no failed download stores audio")
		h.requireClean(t)
	})
}

// TestRetryableFailureRequeuesWithTheAttemptCounted: with attempts left, a
// retryable failure puts the job back in the queue, its attempt recorded.
func TestRetryableFailureRequeuesWithTheAttemptCounted(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		h := newHarness(t, open, Config{})
		src := badSource(t, m, h.stage.cfg.MaxDownloadBytes)
		j := h.fetchOne(t, src+"/503", 3)
		require.Equal(t, job.StatusQueued, j.Status)
		require.Equal(t, 1, j.Attempt)
		require.Empty(t, j.ErrorCode, "not failed")
		a := h.attempts(t, j.ID)
		require.Len(t, a, 1)
		require.Equal(t, job.CodeDownloadFailed, a[0].ErrorCode)
	})
}

// TestGoodMediaIsStoredOnceAndTheJobIsReady: a good file makes the job
// ready with its title, decoded length and audio, a 16 kHz mono WAV in the
// blob store; the same samples from another URL and container are the same
// blob.
func TestGoodMediaIsStoredOnceAndTheJobIsReady(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		h := newHarness(t, open, Config{})
		src := badSource(t, m, h.stage.cfg.MaxDownloadBytes)
		j := h.fetchOne(t, src+"/files/good.ogg", 0)
		require.Equal(t, job.StatusReady, j.Status, "%s: %s", j.ErrorCode, j.ErrorMessage)
		require.Equal(t, "A sine", j.MediaTitle)
		require.InDelta(t, 3.0, j.MediaDuration.Seconds(), 0.05)
		require.Zero(t, j.Attempt, "a finished stage resets the attempt count")
		require.Equal(t, []string{j.AudioKey}, h.keys(t))
		stored := filepath.Join(t.TempDir(), "stored.wav")
		require.NoError(t, h.blobs.GetFile(context.Background(), j.AudioKey, stored))
		d, err := wav.Duration(stored)
		require.NoError(t, err)
		require.Equal(t, j.MediaDuration.Milliseconds(), d.Milliseconds(), "the recorded length is the stored WAV's")

		w := h.fetchOne(t, src+"/files/same.wav", 0)
		require.Equal(t, job.StatusReady, w.Status, "%s: %s", w.ErrorCode, w.ErrorMessage)
		require.Equal(t, "same.wav", w.MediaTitle, "without a title tag, the file's name")
		f := h.fetchOne(t, src+"/files/same.flac", 0)
		require.Equal(t, job.StatusReady, f.Status, "%s: %s", f.ErrorCode, f.ErrorMessage)
		require.Equal(t, w.AudioKey, f.AudioKey, "the same samples are the same blob, whatever the container")
		require.Len(t, h.keys(t), 2)
		h.requireClean(t)
	})
}

// TestLongMediaIsSplitIntoReadyChunks: audio over ChunkLength makes the job
// a parent, transcribing, of ready chunk jobs that cover it.
func TestLongMediaIsSplitIntoReadyChunks(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		h := newHarness(t, open, Config{MaxDuration: time.Minute, ChunkLength: 10 * time.Second})
		src := badSource(t, m, h.stage.cfg.MaxDownloadBytes)
		j := h.fetchOne(t, src+"/files/chunky.ogg", 0)
		require.Equal(t, job.StatusTranscribing, j.Status, "%s: %s", j.ErrorCode, j.ErrorMessage)
		require.Equal(t, 3, j.Chunks)
		var n, total int64
		require.NoError(t, h.env.DB.QueryRow(context.Background(),
			`SELECT count(*), coalesce(sum(media_duration_ms), 0) FROM jobs WHERE parent_id = $1 AND status = 'ready' AND audio_key <> ''`, j.ID).Scan(&n, &total))
		require.EqualValues(t, 3, n)
		require.Equal(t, j.MediaDuration.Milliseconds(), total, "the chunks cover the audio")
		require.Len(t, h.keys(t), 4, "the whole and its three chunks")
		h.requireClean(t)
	})
}

// TestOpenBreakerDefersTheJobWithoutFailingIt: while a dependency's breaker
// is open the job goes back to the queue for BreakerDefer, its attempt not
// counted and no failure recorded: the job is not at fault.
func TestOpenBreakerDefersTheJobWithoutFailingIt(t *testing.T) {
	m := makeMedia(t)
	trip := func(t *testing.T, b *breaker.Breaker) {
		for b.State() != "open" {
			_ = b.Do(func() error { return errors.New("down") })
		}
	}
	for _, c := range []struct {
		name string
		kind job.SourceKind
		url  func(src string) string
		trip func(h *harness) *breaker.Breaker
	}{
		// yt-dlp is never run: the breaker refuses first (the harness has none).
		{"youtube", job.SourceYouTube, func(string) string { return "https://www.youtube.com/watch?v=dQw4w9WgXcQ" },
			func(h *harness) *breaker.Breaker { return h.youtube }},
		// The download happens; storing the audio is refused.
		{"blob store", job.SourceHTTP, func(src string) string { return src + "/files/good.ogg" },
			func(h *harness) *breaker.Breaker { return h.blob }},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, open storetest.Maker) {
				h := newHarness(t, open, Config{})
				src := badSource(t, m, h.stage.cfg.MaxDownloadBytes)
				trip(t, c.trip(h))
				j := h.create(t, c.kind, c.url(src), 1)
				h.stage.process(context.Background(), h.claim(t, j.ID))
				j = h.get(t, j.ID)
				require.Equal(t, job.StatusQueued, j.Status)
				require.Zero(t, j.Attempt, "the attempt is given back")
				require.Empty(t, j.ErrorCode)
				require.Empty(t, h.attempts(t, j.ID), "no failure recorded")
				h.requireNotClaimable(t)
				require.Empty(t, h.keys(t))
				h.requireClean(t)
			})
		})
	}
}

// TestFailingBlobStoreTripsTheBreakerThenJobsWait: the blob store failing
// (its directory replaced by a file) fails jobs retryably until the breaker
// opens; the next job waits in the queue instead of failing.
func TestFailingBlobStoreTripsTheBreakerThenJobsWait(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		h := newHarness(t, open, Config{})
		src := badSource(t, m, h.stage.cfg.MaxDownloadBytes)
		root := h.blobs.Root()
		require.NoError(t, os.RemoveAll(root))
		require.NoError(t, os.WriteFile(root, []byte("not a directory"), 0o600))
		for i := range 2 { // the breaker's Failures
			j := h.fetchOne(t, src+"/files/good.ogg?n="+strconv.Itoa(i), 1)
			require.Equal(t, job.StatusFailed, j.Status)
			a := h.attempts(t, j.ID)
			require.Len(t, a, 1)
			require.Equal(t, job.CodeUnavailable, a[0].ErrorCode, a[0].ErrorMessage)
		}
		require.Equal(t, "open", h.blob.State())
		j := h.fetchOne(t, src+"/files/good.ogg?n=last", 1)
		require.Equal(t, job.StatusQueued, j.Status, "deferred, not failed")
		require.Empty(t, h.attempts(t, j.ID))
		h.requireClean(t)
	})
}

// slowSource serves a download that starts and then stalls until the client
// goes away; started is closed when the first bytes are out. Requests after
// the first get the whole file.
func slowSource(t *testing.T, file string) (url string, started <-chan struct{}) {
	t.Helper()
	body, err := os.ReadFile(file)
	require.NoError(t, err)
	ch := make(chan struct{})
	var n atomic.Int64
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			http.ServeContent(w, r, "good.ogg", time.Time{}, bytes.NewReader(body))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		close(ch)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: no handler outlives the test
	return srv.URL + "/good.ogg", ch
}

// TestShutdownMidDownloadHandsTheJobBack: core stopping during a download
// (the stage's ctx ends) puts the job back in the queue, claimable at once,
// its attempt not counted and nothing recorded against it; the next claim
// fetches it to ready.
func TestShutdownMidDownloadHandsTheJobBack(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		h := newHarness(t, open, Config{})
		url, started := slowSource(t, m.path("good.ogg"))
		j := h.create(t, job.SourceHTTP, url, 1)
		claimed := h.claim(t, j.ID)
		ctx, shutdown := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); h.stage.process(ctx, claimed) }()
		waitFor(t, started, "the download to start")
		shutdown()
		waitFor(t, done, "the stage to stop")

		got := h.get(t, j.ID)
		require.Equal(t, job.StatusQueued, got.Status)
		require.Zero(t, got.Attempt, "a shutdown spends no attempt")
		require.Empty(t, got.ErrorCode)
		require.Empty(t, h.attempts(t, j.ID))
		require.Empty(t, h.keys(t))
		h.requireClean(t)

		again := h.requireClaimableNow(t, j.ID)
		require.Greater(t, again.Epoch, claimed.Epoch, "the old holder is fenced off")
		h.stage.process(context.Background(), again)
		got = h.get(t, j.ID)
		require.Equal(t, job.StatusReady, got.Status, "%s: %s", got.ErrorCode, got.ErrorMessage)
		require.Len(t, h.keys(t), 1)
	})
}

// TestCancelMidDownloadStopsIt: a user's cancel stops the download whether
// the stage hears it on the bus (this process's API) or at its next lease
// renewal (another replica's): the job stays cancelled, with no failure
// recorded, no audio stored and no temp files left.
func TestCancelMidDownloadStopsIt(t *testing.T) {
	m := makeMedia(t)
	for _, c := range []struct {
		name     string
		lease    time.Duration
		announce bool
	}{
		{"heard on the bus", time.Hour, true},
		{"heard at the lease renewal", 3 * time.Second, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, open storetest.Maker) {
				h := newHarness(t, open, Config{Lease: c.lease})
				url, started := slowSource(t, m.path("good.ogg"))
				j := h.create(t, job.SourceHTTP, url, 1)
				claimed := h.claim(t, j.ID)
				done := make(chan struct{})
				go func() { defer close(done); h.stage.process(context.Background(), claimed) }()
				waitFor(t, started, "the download to start")
				st := h.env.Store // another replica's: its announcement does not reach this bus
				if c.announce {
					st = store.New(h.env.DB, store.OnChange(h.bus.Announce))
				}
				_, err := st.CancelJob(context.Background(), h.env.User.ID, j.ID)
				require.NoError(t, err)
				waitFor(t, done, "the download to stop")

				got := h.get(t, j.ID)
				require.Equal(t, job.StatusCancelled, got.Status)
				require.Equal(t, job.CodeCancelled, got.ErrorCode)
				require.Empty(t, h.attempts(t, j.ID))
				require.Empty(t, h.keys(t))
				h.requireClean(t)
			})
		})
	}
}

// TestUploadIsReadFromTheBlobStore: an uploaded file (a blob) is fetched
// like a download; a missing one is unavailable (retryable), not lost.
func TestUploadIsReadFromTheBlobStore(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		h := newHarness(t, open, Config{})
		f, err := os.Open(m.path("good.ogg"))
		require.NoError(t, err)
		defer f.Close()
		require.NoError(t, h.blobs.Put(context.Background(), "uploads/abc", f, -1, "audio/ogg"))
		up := h.insert(t, store.NewJob{URL: job.UploadURL("talk.ogg"), CanonicalURL: "uploads/abc", SourceKind: job.SourceUpload})
		h.stage.process(context.Background(), h.claim(t, up.ID))
		got := h.get(t, up.ID)
		require.Equal(t, job.StatusReady, got.Status, "%s: %s", got.ErrorCode, got.ErrorMessage)
		require.Equal(t, "A sine", got.MediaTitle)

		gone := h.insert(t, store.NewJob{URL: job.UploadURL("gone.ogg"), CanonicalURL: "uploads/gone", SourceKind: job.SourceUpload, MaxAttempts: 1})
		h.stage.process(context.Background(), h.claim(t, gone.ID))
		a := h.attempts(t, gone.ID)
		require.Len(t, a, 1)
		require.Equal(t, job.CodeUnavailable, a[0].ErrorCode)
		h.requireClean(t)
	})
}
