package store

import (
	"context"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// ForceRunnable clears a job's retry backoff; tests use it instead of waiting.
func ForceRunnable(ctx context.Context, s *Store, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE jobs SET run_after = now() WHERE id = $1`, id)
	return err
}

// CreateFast is n's creation in one statement (fastCreation), alone:
// tests see which creations it takes without the transaction.
func (s *Store) CreateFast(ctx context.Context, n NewJob) (ok bool, err error) {
	c := s.fastCreation(n.withDefaults())
	if c == nil {
		return false, nil
	}
	s.creations.Add(c)
	_, ok, err = c.await(ctx)
	return ok, err
}

// CreateTogether sends the creations of ns as one batch of the
// group commit, saying what each got (no job and no error: the creating
// transaction must decide); all must be fast creations. Empty fields take
// CreateJobOnce's defaults.
func (s *Store) CreateTogether(ns []NewJob) ([]job.Job, []error) {
	cs := make([]*creation, len(ns))
	for i, n := range ns {
		cs[i] = s.fastCreation(n.withDefaults())
	}
	s.createBatch(cs)
	jobs, errs := make([]job.Job, len(ns)), make([]error, len(ns))
	for i, c := range cs {
		jobs[i], errs[i] = c.j, c.err
	}
	return jobs, errs
}

// CreationBatches is how many batches the group commit has sent.
func (s *Store) CreationBatches() int64 { return s.creations.batches.Load() }
