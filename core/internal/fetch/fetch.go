// Package fetch is core's download stage: it claims queued jobs, fetches their
// media (yt-dlp for YouTube, other sites and — where the operator allows —
// any web page; the SSRF-safe client for direct URLs), converts the
// audio once to 16 kHz mono WAV, stores it content-addressed in the blob store,
// and marks the job ready for a gpu-node. Every failure is a coded job error
// (see job's codes); a job in flight when core stops, or whose dependency's
// circuit breaker is open, goes back to the queue without spending an attempt.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/media"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/safehttp"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/wav"
)

// Config tunes the stage.
type Config struct {
	Workers          int           // concurrent downloads; default 2
	Owner            string        // lease owner name for this core instance
	Lease            time.Duration // default 30 s, renewed every third of it
	PollFallback     time.Duration // look for queued jobs this often without a wake-up; default 1 s
	MaxDownloadBytes int64         // direct downloads past this fail with media_too_large; default 1 GiB
	// MaxDuration bounds the decoded audio: longer fails too_long, and
	// decoding stops a second past it whatever the file claims; default 4 h.
	MaxDuration  time.Duration
	WorkDir      string        // per-job temp dirs go here; default os.TempDir()
	BreakerDefer time.Duration // how long a job waits while a breaker is open; default 30 s
	// ChunkLength is the longest stretch of audio one engine run gets: longer
	// audio is cut at silences into chunks that idle gpu-nodes transcribe in
	// parallel. 0: 10 minutes; negative: never cut.
	ChunkLength time.Duration
}

// Stage runs the download workers.
type Stage struct {
	log     *slog.Logger
	cfg     Config
	store   *store.Store
	blobs   blob.Store
	ytdlp   *ytdlp.Downloader
	media   *media.Tool
	http    *http.Client
	bus     *dispatch.Bus
	routes  *outbound.Pool
	youtube *breaker.Breaker
	blob    *breaker.Breaker

	cacheHits prometheus.Counter
	stages    *prometheus.HistogramVec
}

// Deps are the stage's collaborators.
type Deps struct {
	Store *store.Store // announcing its changes on Bus (store.OnChange(Bus.Announce)): the stage does not
	Blobs blob.Store
	YtDlp *ytdlp.Downloader
	Media *media.Tool
	HTTP  *http.Client  // must be a safehttp client
	Bus   *dispatch.Bus // what workers and downloads wait on
	// Routes hands each yt-dlp download its outbound proxy and cookies file
	// in turn (nil: yt-dlp's configured ones).
	Routes  *outbound.Pool
	YouTube *breaker.Breaker // guards yt-dlp downloads
	Blob    *breaker.Breaker // guards the blob store
	// CacheHits counts jobs finished with an earlier job's transcript.
	CacheHits prometheus.Counter
	// Stages observes the download stage's duration as stage "download".
	Stages *prometheus.HistogramVec
}

// New returns a stage; Run starts it.
func New(log *slog.Logger, cfg Config, d Deps) *Stage {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.PollFallback <= 0 {
		cfg.PollFallback = time.Second
	}
	if cfg.MaxDownloadBytes <= 0 {
		cfg.MaxDownloadBytes = 1 << 30
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 4 * time.Hour
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = os.TempDir()
	}
	if cfg.BreakerDefer <= 0 {
		cfg.BreakerDefer = 30 * time.Second
	}
	if cfg.ChunkLength == 0 {
		cfg.ChunkLength = 10 * time.Minute
	}
	if d.CacheHits == nil {
		d.CacheHits = prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	}
	return &Stage{log: log, cfg: cfg, store: d.Store, blobs: d.Blobs, ytdlp: d.YtDlp, media: d.Media,
		http: d.HTTP, bus: d.Bus, routes: d.Routes, youtube: d.YouTube, blob: d.Blob, cacheHits: d.CacheHits, stages: d.Stages}
}

// Run claims and processes jobs until ctx ends. Jobs in flight when ctx ends
// are handed back unfinished, their attempt not counted, so another instance
// (or this one, restarted) takes them at once.
func (s *Stage) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.worker(ctx) })
	}
	wg.Wait()
	return nil
}

func (s *Stage) worker(ctx context.Context) {
	for ctx.Err() == nil {
		woken := s.bus.Queued.Wait()
		j, ok, err := s.store.ClaimQueued(ctx, s.cfg.Owner, s.cfg.Lease)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "claim queued job", "err", err)
		}
		if ok {
			s.process(ctx, j)
			continue
		}
		// Jitter keeps replicas' fallback polls from lining up.
		wait := s.cfg.PollFallback/2 + rand.N(s.cfg.PollFallback/2+1)
		select {
		case <-ctx.Done():
		case <-woken:
		case <-time.After(wait):
		}
	}
}

// errCancelled is the cause when the user cancelled the job mid-download.
var errCancelled = errors.New("job cancelled")

func (s *Stage) process(ctx context.Context, j job.Job) {
	log := s.log.With("job_id", j.ID, "epoch", j.Epoch)
	log.InfoContext(ctx, "download started", "source", string(j.SourceKind), "attempt", j.Attempt)
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		s.keepLease(jobCtx, j, cancel)
	}()

	var m store.Media
	var chunks []store.Chunk
	cached, err := s.store.CompleteFromCache(jobCtx, j.ID, j.Epoch)
	captioned := false
	if err == nil && !cached {
		captioned, err = s.fromCaptions(jobCtx, j)
	}
	if err == nil && !cached && !captioned {
		m, chunks, err = s.fetch(jobCtx, j)
		switch {
		case err != nil:
		case len(chunks) > 0:
			err = s.store.SplitIntoChunks(ctx, j.ID, j.Epoch, m, chunks)
		default:
			err = s.store.MarkReady(ctx, j.ID, j.Epoch, m)
		}
	}
	cancel(nil)
	<-leaseDone
	cause := context.Cause(jobCtx)
	switch {
	case err == nil && cached:
		s.cacheHits.Inc()
		log.InfoContext(ctx, "transcript reused from an earlier job of the same media and options")
	case err == nil && captioned:
		log.InfoContext(ctx, "transcript taken from the video's captions: no download, no GPU")
	case err == nil:
		if s.stages != nil {
			s.stages.WithLabelValues("download").Observe(time.Since(j.DownloadingAt).Seconds())
		}
		log.InfoContext(ctx, "download finished", "duration_seconds", m.Duration.Seconds(), "chunks", len(chunks))
	case errors.Is(cause, errCancelled) || errors.Is(cause, job.ErrLeaseLost) || errors.Is(err, job.ErrLeaseLost):
		// Cancelled by the user, or another instance owns the job now: nothing to record.
		log.InfoContext(ctx, "download abandoned", "reason", context.Cause(jobCtx))
	case ctx.Err() != nil:
		// Core is shutting down: the job did nothing wrong, so it goes back
		// to the queue at once without spending an attempt — a job caught by
		// a few rolling restarts must not fail attempts_exhausted.
		if _, rerr := s.store.Release(context.WithoutCancel(ctx), j.ID, j.Epoch, 0); rerr != nil {
			log.WarnContext(ctx, "hand back download at shutdown", "err", rerr)
		}
		log.InfoContext(ctx, "download handed back at shutdown")
	case errors.Is(err, outbound.ErrAllResting):
		// Every proxy and cookie file is resting after a bot check or rate
		// limit: park the job, without spending an attempt, until the first
		// one wakes.
		var re *outbound.RestingError
		wait := s.cfg.BreakerDefer
		if errors.As(err, &re) {
			wait = max(time.Until(re.Until), time.Second)
		}
		if _, rerr := s.store.Release(context.WithoutCancel(ctx), j.ID, j.Epoch, wait); rerr != nil {
			log.WarnContext(ctx, "park download", "err", rerr)
		}
		log.InfoContext(ctx, "download parked: every outbound route is resting", "retry_in", wait)
	case errors.Is(err, breaker.ErrOpen):
		// A dependency is down: the job is not at fault, so hand it back for
		// later without spending one of its attempts.
		if _, rerr := s.store.Release(context.WithoutCancel(ctx), j.ID, j.Epoch, s.cfg.BreakerDefer); rerr != nil {
			log.WarnContext(ctx, "defer download", "err", rerr)
		}
		log.InfoContext(ctx, "download deferred", "reason", err.Error(), "retry_in", s.cfg.BreakerDefer)
	case diskFull(s.cfg.WorkDir, err):
		// The media is not at fault when core's own disk is: hand the job
		// back, without spending an attempt, until space comes back (a
		// full disk used to fail jobs download_failed: the chaos suite).
		if _, rerr := s.store.Release(context.WithoutCancel(ctx), j.ID, j.Epoch, s.cfg.BreakerDefer); rerr != nil {
			log.WarnContext(ctx, "defer download", "err", rerr)
		}
		log.ErrorContext(ctx, "download deferred: the work directory is full", "dir", s.cfg.WorkDir, "err", err, "retry_in", s.cfg.BreakerDefer)
	default:
		s.fail(ctx, log, j, err)
	}
}

// minFreeBytes is how little free space in the work directory counts as
// full: below it a failed download is taken for the disk's fault. yt-dlp and
// ffmpeg report a full disk in their own words, so the space is looked at
// rather than the error alone.
const minFreeBytes = 16 << 20

// diskFull says whether a download failed because the work directory is
// full: the error says ENOSPC, or little space is left after it.
func diskFull(dir string, err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return false
	}
	return int64(st.Bavail)*int64(st.Bsize) < minFreeBytes
}

// fail records a failed attempt. An uncoded error is an internal fault worth
// another attempt.
func (s *Stage) fail(ctx context.Context, log *slog.Logger, j job.Job, err error) {
	var je *job.Error
	if !errors.As(err, &je) {
		je = &job.Error{Code: job.CodeDownloadFailed, Message: "the media could not be fetched", Retryable: true, Err: err}
	}
	// The stage's ctx may end (shutdown) while this records: finish anyway.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	st, ferr := s.store.Fail(fctx, j.ID, j.Epoch, je)
	if ferr != nil {
		log.WarnContext(ctx, "record download failure", "err", ferr)
		return
	}
	log.InfoContext(ctx, "download failed", "code", je.Code, "retryable", je.Retryable, "status", string(st), "err", err)
}

// keepLease renews the download lease and stops the download when the job is
// cancelled or the lease is lost. A replica cut off from the database
// cannot hear that its lease was lost, so it fences itself: once no renewal
// has succeeded for a whole lease, the lease has expired and another
// replica may be downloading the job, and this download stops (each renewal
// is bounded in time, so a blackholed connection cannot hold it past that).
func (s *Stage) keepLease(ctx context.Context, j job.Job, cancel context.CancelCauseFunc) {
	cancelled, release := s.bus.Cancels.Wait(j.ID)
	defer release()
	t := time.NewTicker(s.cfg.Lease / 3)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cancelled:
			cancel(errCancelled)
			return
		case <-t.C:
		}
		callCtx, done := context.WithTimeout(ctx, s.cfg.Lease/3)
		l, err := s.store.ExtendLease(callCtx, j.ID, j.Epoch, s.cfg.Lease, -1)
		done()
		switch {
		case errors.Is(err, job.ErrLeaseLost):
			cancel(err)
			return
		case err != nil && time.Since(renewed) >= s.cfg.Lease:
			s.log.WarnContext(ctx, "no download lease renewal for a whole lease: stopping", "job_id", j.ID, "err", err)
			cancel(job.ErrLeaseLost)
			return
		case err != nil:
			s.log.WarnContext(ctx, "extend download lease", "job_id", j.ID, "err", err)
		case l.Cancel:
			cancel(errCancelled)
			return
		default:
			renewed = time.Now()
		}
	}
}

// fromCaptions completes a YouTube or site job from the video's own captions
// when its source allows — no download, no GPU — and reports whether it did.
// "auto" takes only captions a person made, since our engines do better than
// the sites' automatic ones; "captions" takes those too, or fails. Language
// "auto" takes the captions in the language the video is spoken in.
func (s *Stage) fromCaptions(ctx context.Context, j job.Job) (bool, error) {
	if (j.SourceKind != job.SourceYouTube && j.SourceKind != job.SourceSite) || j.Source == job.SourceASR {
		return false, nil
	}
	dir, err := os.MkdirTemp(s.cfg.WorkDir, "ytcaption-captions-")
	if err != nil {
		return false, fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var c ytdlp.Captions
	var found bool
	err = s.withYtDlp(ctx, dir, j, func(d *ytdlp.Downloader, dir string) (err error) {
		c, found, err = d.FetchCaptions(ctx, dir, j.CanonicalURL, j.Language, j.Source == job.SourceCaptions)
		return err
	})
	switch {
	case err != nil:
		return false, err
	case !found && j.Source == job.SourceCaptions && j.Language == "auto":
		return false, &job.Error{Code: job.CodeNoCaptions, Message: "the video has no captions in its own language, not even automatic ones"}
	case !found && j.Source == job.SourceCaptions:
		return false, &job.Error{Code: job.CodeNoCaptions, Message: fmt.Sprintf("the video has no captions in %q, not even automatic ones", j.Language)}
	case !found:
		return false, nil
	}
	from := job.FromCaptions
	if c.Automatic {
		from = job.FromAutomaticCaptions
	}
	m := siteMedia(c.Result)
	m.Duration = c.Duration
	return true, s.store.CompleteFromCaptions(ctx, j.ID, j.Epoch, m, c.Language, from, c.Segments)
}

// fetch downloads, checks and normalises the media in a private temp dir and
// stores the audio. The returned Media is what MarkReady records.
func (s *Stage) fetch(ctx context.Context, j job.Job) (store.Media, []store.Chunk, error) {
	dir, err := os.MkdirTemp(s.cfg.WorkDir, "ytcaption-fetch-")
	if err != nil {
		return store.Media{}, nil, fmt.Errorf("make job dir: %w", err)
	}
	defer os.RemoveAll(dir)

	var src string
	var m store.Media // what the site says; the title of a file
	switch j.SourceKind {
	case job.SourceYouTube, job.SourceSite:
		r, err := s.viaYtDlp(ctx, dir, j)
		if err != nil {
			return store.Media{}, nil, err
		}
		src, m = r.Path, siteMedia(r)
	case job.SourceUpload:
		src, m.Title = filepath.Join(dir, "upload"), job.UploadName(j.URL)
		err := s.blob.Do(func() error { return s.blobs.GetFile(ctx, j.CanonicalURL, src) })
		switch {
		case errors.Is(err, breaker.ErrOpen):
			return store.Media{}, nil, err
		case err != nil:
			return store.Media{}, nil, &job.Error{Code: job.CodeUnavailable, Message: "the uploaded file could not be read", Retryable: true, Err: err}
		}
	default:
		f, err := safehttp.Download(ctx, s.http, j.CanonicalURL, dir, s.cfg.MaxDownloadBytes)
		if err != nil {
			return store.Media{}, nil, err
		}
		src, m.Title = f.Path, f.Filename
		if isPage(f.ContentType) {
			// A web page, not a file: yt-dlp's generic extractor finds the
			// media in it, where the operator allows it to read any page.
			if !s.ytdlp.ReadsPages() {
				return store.Media{}, nil, job.Errorf(job.CodeNotMedia,
					"the URL is a web page, not a media file, and not on a site this server reads pages from (YouTube, Vimeo, SoundCloud, …)")
			}
			r, err := s.viaYtDlp(ctx, dir, j)
			if err != nil {
				return store.Media{}, nil, err
			}
			src, m = r.Path, siteMedia(r)
		}
	}

	audio, length, probedTitle, err := s.decode(ctx, src, dir)
	if err != nil {
		return store.Media{}, nil, err
	}
	if probedTitle != "" {
		m.Title = probedTitle
	}
	sum, err := blob.HashFile(audio)
	if err != nil {
		return store.Media{}, nil, fmt.Errorf("hash audio: %w", err)
	}
	key, err := s.storeAudio(ctx, sum, audio)
	if err != nil {
		return store.Media{}, nil, err
	}
	m.Duration, m.AudioKey = length, key
	// A job that labels speakers is transcribed whole: each chunk's engine
	// run would number its speakers afresh, and nothing here could tell
	// that chunk 2's "Speaker 1" is chunk 1's "Speaker 2".
	if s.cfg.ChunkLength < 0 || length <= s.cfg.ChunkLength || j.Speakers {
		return m, nil, nil
	}
	chunks, err := s.chunk(ctx, dir, audio)
	return m, chunks, err
}

// viaYtDlp downloads a page's media with yt-dlp (withYtDlp).
func (s *Stage) viaYtDlp(ctx context.Context, dir string, j job.Job) (r ytdlp.Result, err error) {
	err = s.withYtDlp(ctx, dir, j, func(d *ytdlp.Downloader, dir string) (err error) {
		r, err = d.Download(ctx, dir, j.CanonicalURL)
		return err
	})
	return r, err
}

// withYtDlp runs op — one yt-dlp run for j — through the outbound routes in
// turn (outbound.Pool.Do): a route that draws a bot check or a rate limit
// rests and op is tried at once through the next one, within the same
// attempt; with every route resting, the error says so
// (outbound.ErrAllResting) and process parks the job.
func (s *Stage) withYtDlp(ctx context.Context, dir string, j job.Job, op func(d *ytdlp.Downloader, dir string) error) error {
	if s.routes == nil {
		return s.ytDlpOnce(j, func() error { return op(s.ytdlp, dir) })
	}
	return s.routes.Do(ctx, dir, func(proxy, cookies, dir string) error {
		d := s.ytdlp.Via(ytdlp.Route{Proxy: proxy, CookiesFile: cookies})
		return s.ytDlpOnce(j, func() error { return op(d, dir) })
	})
}

// ytDlpOnce runs one yt-dlp run. YouTube's go through YouTube's breaker:
// when YouTube refuses this server broadly, its jobs wait instead of
// spending attempts.
func (s *Stage) ytDlpOnce(j job.Job, run func() error) error {
	if j.SourceKind == job.SourceYouTube {
		return s.youtube.Do(run)
	}
	return run()
}

// siteMedia is what the site says of the media.
func siteMedia(r ytdlp.Result) store.Media {
	return store.Media{Title: r.Title, Uploader: r.Uploader, Site: r.Site, SiteID: r.SiteID,
		UploadDate: r.UploadDate, Thumbnail: r.Thumbnail, WebpageURL: r.WebpageURL}
}

// isPage reports whether a response's Content-Type is a web page.
func isPage(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// decode probes src and converts its audio to dir/audio.wav, returning the
// WAV's path, its length and the title the file states. The length is the
// decoded audio's, counted in samples: the one MaxDuration, chunking and
// billing use. The container's claimed duration may refuse a file early —
// it already says it is too long, so decoding it is wasted work — but never
// accepts one: a file claiming 1 s and holding hours is cut off a second past
// MaxDuration and fails too_long.
func (s *Stage) decode(ctx context.Context, src, dir string) (string, time.Duration, string, error) {
	info, err := s.media.Probe(ctx, src)
	if err != nil {
		return "", 0, "", err
	}
	if !info.HasAudio {
		return "", 0, "", job.Errorf(job.CodeNotMedia, "the file has no audio stream")
	}
	if info.Claimed > s.cfg.MaxDuration {
		return "", 0, "", job.Errorf(job.CodeTooLong, "the media says it lasts %s; the maximum is %s", info.Claimed.Round(time.Second), s.cfg.MaxDuration)
	}
	audio := filepath.Join(dir, "audio.wav")
	length, err := s.media.Normalize(ctx, src, audio, s.cfg.MaxDuration)
	if err != nil {
		return "", 0, "", err
	}
	return audio, length, info.Title, nil
}

// storeAudio keeps a WAV in the blob store under its content hash: the same
// audio fetched twice is stored once. It is written even when present, so
// its time says it is in use again: the retention sweeper keeps a blob stored
// after it was queued for deletion.
func (s *Stage) storeAudio(ctx context.Context, sum []byte, wav string) (string, error) {
	key := blob.ContentKey("audio", sum, ".wav")
	err := s.blob.Do(func() error { return s.blobs.PutFile(ctx, key, wav, "audio/wav") })
	switch {
	case errors.Is(err, breaker.ErrOpen):
		return "", err
	case err != nil:
		return "", &job.Error{Code: job.CodeUnavailable, Message: "the blob store is unavailable", Retryable: true, Err: err}
	}
	return key, nil
}

// chunk cuts long audio at silences into pieces of at most ChunkLength and
// stores each: the chunks gpu-nodes transcribe in parallel.
func (s *Stage) chunk(ctx context.Context, dir, audio string) ([]store.Chunk, error) {
	silences, err := s.media.Silences(ctx, audio)
	if err != nil {
		return nil, err
	}
	total, err := wav.Duration(audio)
	if err != nil {
		return nil, err
	}
	cuts := media.CutPoints(total, s.cfg.ChunkLength, silences)
	paths, err := media.SplitWAV(audio, dir, cuts)
	if err != nil {
		return nil, err
	}
	chunks := make([]store.Chunk, len(paths))
	for i, p := range paths {
		sum, err := blob.HashFile(p)
		if err != nil {
			return nil, fmt.Errorf("hash chunk: %w", err)
		}
		if chunks[i].AudioKey, err = s.storeAudio(ctx, sum, p); err != nil {
			return nil, err
		}
		end := total
		if i < len(cuts) {
			end = cuts[i]
		}
		start := time.Duration(0)
		if i > 0 {
			start = cuts[i-1]
		}
		chunks[i].OffsetMS, chunks[i].Duration = start.Milliseconds(), (end - start).Milliseconds()
	}
	return chunks, nil
}
