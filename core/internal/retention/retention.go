// Package retention is core's data-lifecycle sweeper: downloaded audio is
// deleted after its retention period (transcripts stay), transcripts and job
// records after theirs when an operator sets one, and leftover temp files of
// crashed downloads. It works in small batches so a backlog never holds long
// locks, records every pass in the sweeps table, and runs on the leader only.
// Bucket lifecycle rules (terraform/, the README's mc command) are a second
// line behind it, never the only one.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/workdir"
)

// Config says how long things are kept. Zero keeps forever, except Audio.
type Config struct {
	Audio       time.Duration // default 7 days
	Transcripts time.Duration // 0: forever
	Jobs        time.Duration // 0: forever
	TempDir     string        // the work directory, whose dead processes' directories go (workdir.Sweep); "" skips it
	Every       time.Duration // default 1 hour
	Batch       int           // default 100
	Now         func() time.Time
}

// Sweeper deletes what has expired.
type Sweeper struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	blobs   blob.Store
	deleted *prometheus.CounterVec
}

// New returns a sweeper; its counters go to reg (nil: not exported).
func New(log *slog.Logger, cfg Config, st *store.Store, blobs blob.Store, reg prometheus.Registerer) *Sweeper {
	if cfg.Audio <= 0 {
		cfg.Audio = 7 * 24 * time.Hour
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sweeper{cfg: cfg, log: log, store: st, blobs: blobs, deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ytcaption_core_retention_deleted_total", Help: "What the retention sweeper deleted, by kind: audio, transcripts, jobs, blobs, temp.",
	}, []string{"kind"})}
	if reg != nil {
		reg.MustRegister(s.deleted)
	}
	return s
}

// Run sweeps every Every until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "retention sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Every):
		}
	}
}

// Sweep makes one pass and records it: it runs each kind of deletion to the
// end of its backlog, a batch at a time.
func (s *Sweeper) Sweep(ctx context.Context) (store.Sweep, error) {
	now := s.cfg.Now()
	w := store.Sweep{Cutoff: now.Add(-s.cfg.Audio)}
	var err error
	if w.Audio, err = drain(ctx, func() (int, error) { return s.store.ExpireAudio(ctx, w.Cutoff, s.cfg.Batch) }); err != nil {
		return w, err
	}
	if s.cfg.Transcripts > 0 {
		cut := now.Add(-s.cfg.Transcripts)
		if w.Transcripts, err = drain(ctx, func() (int, error) { return s.store.ExpireTranscripts(ctx, cut, s.cfg.Batch) }); err != nil {
			return w, err
		}
	}
	if s.cfg.Jobs > 0 {
		cut := now.Add(-s.cfg.Jobs)
		if w.Jobs, err = drain(ctx, func() (int, error) { return s.store.ExpireJobs(ctx, cut, s.cfg.Batch) }); err != nil {
			return w, err
		}
	}
	if w.Blobs, err = DeletePending(ctx, s.store, s.blobs, s.cfg.Batch); err != nil {
		return w, err
	}
	temp := s.removeTemp()
	for kind, n := range map[string]int{"audio": w.Audio, "transcripts": w.Transcripts, "jobs": w.Jobs, "blobs": w.Blobs, "temp": temp} {
		s.deleted.WithLabelValues(kind).Add(float64(n))
	}
	if w.Audio+w.Transcripts+w.Jobs+w.Blobs+temp > 0 {
		s.log.InfoContext(ctx, "retention sweep", "audio", w.Audio, "transcripts", w.Transcripts, "jobs", w.Jobs, "blobs", w.Blobs, "temp_dirs", temp)
	}
	return w, s.store.RecordSweep(ctx, w)
}

// drain calls batch until it does nothing more.
func drain(ctx context.Context, batch func() (int, error)) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := batch()
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
	return total, ctx.Err()
}

// DeletePending deletes the queued blobs, batch at a time; the sweeper runs
// it. One stored again after it was queued — the same audio fetched for a new
// job — is in use, and stays. Running it twice at once is harmless:
// deletions are idempotent.
func DeletePending(ctx context.Context, st *store.Store, blobs blob.Store, batch int) (int, error) {
	release, ok, err := st.AllowBlobDeletions(ctx)
	if err != nil || !ok {
		return 0, err // a backup is copying the bucket: the next pass deletes
	}
	defer release()
	n := 0
	for ctx.Err() == nil {
		pending, err := st.PendingBlobDeletions(ctx, batch)
		if err != nil || len(pending) == 0 {
			return n, err
		}
		done, err := deleteBlobs(ctx, st, blobs, pending)
		n += done
		if err != nil {
			return n, err
		}
	}
	return n, ctx.Err()
}

// DeleteBlobs deletes just ds, queued by a purge, at once — not the whole
// queue, which a request must not wait for. The sweeper retries what fails.
func DeleteBlobs(ctx context.Context, st *store.Store, blobs blob.Store, ds []store.BlobDeletion) (int, error) {
	release, ok, err := st.AllowBlobDeletions(ctx)
	if err != nil || !ok {
		return 0, err
	}
	defer release()
	return deleteBlobs(ctx, st, blobs, ds)
}

func deleteBlobs(ctx context.Context, st *store.Store, blobs blob.Store, ds []store.BlobDeletion) (int, error) {
	n := 0
	for _, d := range ds {
		at, ok, err := blobs.Stored(ctx, d.Key)
		if err != nil {
			return n, err
		}
		kept := ok && at.After(d.RequestedAt)
		if ok && !kept {
			if err := blobs.Delete(ctx, d.Key); err != nil {
				return n, err
			}
			n++
		}
		if err := st.BlobDeleted(ctx, d, kept); err != nil {
			return n, err
		}
	}
	return n, nil
}

// removeTemp removes the work directories of core processes that died
// (workdir.Sweep): a download removes its own files, so only a crash leaves
// any, and a starting process sweeps too, so this is for a host where none
// restarts.
func (s *Sweeper) removeTemp() int {
	if s.cfg.TempDir == "" {
		return 0
	}
	return workdir.Sweep(s.cfg.TempDir)
}
