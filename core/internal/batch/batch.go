// Package batch enumerates batches — a YouTube playlist, a channel, a page
// with several media — into child jobs, and records when a batch has ended.
//
// Enumeration is a leased unit of work like a download: every core replica
// runs an Enumerator, which claims a batch waiting to be enumerated
// (store.ClaimEnumeration), lists its entries with yt-dlp (ytdlp.Entries:
// the same egress proxy, outbound routes and YouTube breaker as a download)
// and adds one child job per entry in small groups. A core that dies
// mid-enumeration leaves some children added and its lease running out;
// whoever claims the batch next enumerates again from the start, and the
// unique (batch, entry) key lets only the missing children in. A write of
// an enumerator whose lease was taken over or whose batch was cancelled is
// refused (lease_lost), so it stops.
package batch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/mediaurl"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/egress"
)

// Config tunes the enumerator.
type Config struct {
	Owner string // lease owner name for this core instance
	// Lease is how long a claim holds a batch; default 2 min. A listing is
	// one yt-dlp run, bounded by ListTimeout, so no renewal is needed.
	Lease time.Duration
	// ListTimeout bounds one yt-dlp listing; default 90 s.
	ListTimeout time.Duration
	// PollFallback is how often it looks for batches to enumerate and for
	// batches that ended; default 1 s, jittered.
	PollFallback time.Duration
	// Group is how many children are added per transaction; default 50.
	Group   int
	WorkDir string // default os.TempDir()
	// Policy is the address policy entries' literal hosts are checked
	// against, as CreateJob checks a submitted URL's.
	Policy egress.Policy
}

// Deps are the enumerator's collaborators.
type Deps struct {
	Store   *store.Store
	YtDlp   *ytdlp.Downloader
	Routes  *outbound.Pool   // nil: yt-dlp's configured proxy and cookies
	YouTube *breaker.Breaker // guards YouTube listings; nil: none
	// Ended is told of each batch that ended (nil: nobody).
	Ended func(ctx context.Context, batchID string)
}

// Enumerator runs enumerations and notices batches' ends.
type Enumerator struct {
	log *slog.Logger
	cfg Config
	d   Deps
}

// New returns an Enumerator; Run starts it.
func New(log *slog.Logger, cfg Config, d Deps) *Enumerator {
	cfg.Lease = cmp.Or(cfg.Lease, 2*time.Minute)
	cfg.ListTimeout = cmp.Or(cfg.ListTimeout, 90*time.Second)
	cfg.PollFallback = cmp.Or(cfg.PollFallback, time.Second)
	cfg.Group = cmp.Or(cfg.Group, 50)
	cfg.WorkDir = cmp.Or(cfg.WorkDir, os.TempDir())
	return &Enumerator{log: log, cfg: cfg, d: d}
}

// Run enumerates batches and sweeps ended ones until ctx ends. An
// enumeration cut short by ctx is left to its lease: another replica (or
// this one, restarted) enumerates it again.
func (e *Enumerator) Run(ctx context.Context) {
	for ctx.Err() == nil {
		b, ok, err := e.d.Store.ClaimEnumeration(ctx, e.cfg.Owner, e.cfg.Lease)
		if err != nil && ctx.Err() == nil {
			e.log.WarnContext(ctx, "claim batch", "err", err)
		}
		if ok {
			e.enumerate(ctx, b)
			continue
		}
		e.sweep(ctx)
		wait := e.cfg.PollFallback/2 + rand.N(e.cfg.PollFallback/2+1)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// sweep marks batches whose children have all finished as done.
func (e *Enumerator) sweep(ctx context.Context) {
	ids, err := e.d.Store.FinishBatches(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.WarnContext(ctx, "finish batches", "err", err)
		}
		return
	}
	for _, id := range ids {
		e.log.InfoContext(ctx, "batch done", "batch_id", id)
		if e.d.Ended != nil {
			e.d.Ended(ctx, id)
		}
	}
}

func (e *Enumerator) enumerate(ctx context.Context, b store.Batch) {
	log := e.log.With("batch_id", b.ID, "attempt", b.Attempt)
	log.InfoContext(ctx, "enumeration started")
	entries, err := e.list(ctx, b)
	var added, skipped int
	if err == nil {
		var children []store.BatchEntry
		children, skipped = Select(entries, b, e.cfg.Policy)
		added, err = e.add(ctx, b, children)
		if err == nil {
			err = e.d.Store.FinishEnumeration(ctx, b.ID, b.Attempt, len(children), skipped)
		}
	}
	switch {
	case err == nil:
		log.InfoContext(ctx, "enumeration finished", "added", added, "skipped", skipped)
	case ctx.Err() != nil:
		log.InfoContext(ctx, "enumeration interrupted: the next claim resumes it", "added", added)
	case errors.Is(err, job.ErrLeaseLost):
		log.InfoContext(ctx, "enumeration abandoned: the batch was cancelled or taken over", "added", added)
	default:
		var je *job.Error
		if !errors.As(err, &je) {
			je = &job.Error{Code: job.CodeDownloadFailed, Message: "the playlist could not be listed", Retryable: true, Err: err}
		}
		st, ferr := e.d.Store.FailEnumeration(context.WithoutCancel(ctx), b.ID, b.Attempt, je, 30*time.Second)
		if ferr != nil {
			log.WarnContext(ctx, "record enumeration failure", "err", ferr)
			return
		}
		log.InfoContext(ctx, "enumeration failed", "code", je.Code, "status", st, "err", err)
	}
}

// list asks yt-dlp for the entries. Playlist order needs only the first
// max_items; newest first or a date range need the whole list (up to the
// hard maximum) to choose from.
func (e *Enumerator) list(ctx context.Context, b store.Batch) ([]ytdlp.Entry, error) {
	limit := b.MaxItems
	if b.Order == store.OrderNewest || b.After != "" || b.Before != "" {
		limit = store.MaxBatchItems
	}
	dir, err := os.MkdirTemp(e.cfg.WorkDir, "ytcaption-batch-")
	if err != nil {
		return nil, fmt.Errorf("make batch dir: %w", err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ListTimeout)
	defer cancel()
	var out []ytdlp.Entry
	once := func(d *ytdlp.Downloader, dir string) error {
		run := func() (err error) {
			out, err = d.Entries(ctx, dir, b.CanonicalURL, limit)
			return err
		}
		if e.d.YouTube != nil && isYouTube(b.CanonicalURL) {
			return e.d.YouTube.Do(run)
		}
		return run()
	}
	if e.d.Routes == nil {
		err = once(e.d.YtDlp, dir)
	} else {
		err = e.d.Routes.Do(ctx, dir, func(proxy, cookies, dir string) error {
			return once(e.d.YtDlp.Via(ytdlp.Route{Proxy: proxy, CookiesFile: cookies}), dir)
		})
	}
	return out, err
}

func isYouTube(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Hostname() == "www.youtube.com"
}

// add inserts the children in groups, each its own transaction, so a long
// list shows progress and an interruption keeps what was added.
func (e *Enumerator) add(ctx context.Context, b store.Batch, children []store.BatchEntry) (int, error) {
	added := 0
	for first := 0; first < len(children); first += e.cfg.Group {
		if err := ctx.Err(); err != nil {
			return added, err
		}
		n, err := e.d.Store.AddBatchJobs(ctx, b.ID, b.Attempt, first, children[first:min(first+e.cfg.Group, len(children))])
		added += n
		if err != nil {
			return added, err
		}
	}
	return added, nil
}

// Select turns a listing into the batch's children: live and upcoming
// streams, entries outside the date range (and, with a range, entries whose
// date the listing does not give: it cannot be checked), URLs CreateJob
// would refuse and repeats are skipped; newest first sorts by upload date
// when every entry has one (a YouTube channel's uploads are listed newest
// first already) and keeps the listing's order otherwise; then max_items.
// It returns the children and how many entries it skipped.
func Select(entries []ytdlp.Entry, b store.Batch, policy egress.Policy) ([]store.BatchEntry, int) {
	kept := make([]ytdlp.Entry, 0, len(entries))
	for _, en := range entries {
		switch {
		case en.LiveStatus == "is_live" || en.LiveStatus == "is_upcoming":
		case (b.After != "" || b.Before != "") && en.UploadDate == "":
		case b.After != "" && en.UploadDate < b.After:
		case b.Before != "" && en.UploadDate > b.Before:
		default:
			kept = append(kept, en)
		}
	}
	if b.Order == store.OrderNewest && !slices.ContainsFunc(kept, func(en ytdlp.Entry) bool { return en.UploadDate == "" }) {
		slices.SortStableFunc(kept, func(x, y ytdlp.Entry) int { return cmp.Compare(y.UploadDate, x.UploadDate) })
	}
	seen := map[string]bool{}
	var out []store.BatchEntry
	for _, en := range kept {
		if len(out) == b.MaxItems {
			break
		}
		src, err := mediaurl.Parse(en.URL)
		if err != nil || seen[src.URL] {
			continue
		}
		if u, err := url.Parse(src.URL); err != nil || policy.CheckHost(u.Hostname()) != nil {
			continue
		}
		seen[src.URL] = true
		out = append(out, store.BatchEntry{URL: en.URL, CanonicalURL: src.URL, SourceKind: src.Kind})
	}
	return out, len(entries) - len(out)
}
