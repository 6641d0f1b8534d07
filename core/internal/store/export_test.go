package store

import "context"

// ForceRunnable clears a job's retry backoff; tests use it instead of waiting.
func ForceRunnable(ctx context.Context, s *Store, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE jobs SET run_after = now() WHERE id = $1`, id)
	return err
}
