package store

import "context"

// ForceRunnable clears a job's retry backoff; tests use it instead of waiting.
func ForceRunnable(ctx context.Context, s *Store, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE jobs SET run_after = now() WHERE id = $1`, id)
	return err
}

// CreateFast is createFast: tests see which creations it takes alone.
func (s *Store) CreateFast(ctx context.Context, n NewJob) (ok bool, err error) {
	if n.MaxAttempts <= 0 {
		n.MaxAttempts = 3
	}
	n.Language, n.Source, n.Task = "auto", "auto", "transcribe"
	_, ok, err = s.createFast(ctx, n)
	return ok, err
}
