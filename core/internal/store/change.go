package store

import (
	"context"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// Change is one job's change, reported once the transaction that made it
// has committed: never before, never for one rolled back. Whoever waits on
// jobs learns of it from here (core: dispatch's Bus.Announce), so no caller
// pairs a transition with its wake-up by hand.
type Change struct {
	JobID string
	// From is the status before ("" for a new job), To after; From == To
	// for a change within a state: progress, segments, a chunk done.
	From, To job.Status
}

// Option configures a Store.
type Option func(*Store)

// OnChange sets the function told of every job change after it commits. It
// runs on the goroutine that made the change, so it must not block for long.
func OnChange(fn func(context.Context, Change)) Option {
	return func(s *Store) { s.onChange = fn }
}

// changes collects a transaction's job changes until it commits.
type changes []Change

func (c *changes) add(id string, from, to job.Status) {
	*c = append(*c, Change{JobID: id, From: from, To: to})
}

// report tells the observer of committed changes, in the order they were made.
func (s *Store) report(ctx context.Context, cs ...Change) {
	if s.onChange == nil {
		return
	}
	for _, c := range cs {
		s.onChange(ctx, c)
	}
}

// changeTx runs fn in a transaction like inTx and, once it has committed,
// reports the changes fn recorded.
func (s *Store) changeTx(ctx context.Context, what string, fn func(sqldb.Tx, *changes) error) error {
	var cs changes
	if err := s.inTx(ctx, what, func(tx sqldb.Tx) error { return fn(tx, &cs) }); err != nil {
		return err
	}
	s.report(ctx, cs...)
	return nil
}
