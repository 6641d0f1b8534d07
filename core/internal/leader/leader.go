// Package leader elects one core replica to run the maintenance duties that
// must not run twice at once: lease rescue, stitching chunked jobs, and the
// retention sweeper. Leadership is the database's session lock
// (sqldb.DB.TryLockSession): on PostgreSQL a session advisory lock held on a
// connection of its own, which ends when the holder stops or its connection
// dies, another replica taking over within one retry period; on SQLite an
// in-process lock, so the single box leads at once.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// Config tunes an election.
type Config struct {
	Key   int64         // advisory lock key; one per kind of duty
	Retry time.Duration // how often a follower tries to take over; default 5 s
	Check time.Duration // how often a leader checks its session; default 5 s
}

// Run campaigns until ctx ends. While this process leads it runs duty with a
// context that is cancelled as soon as leadership is lost.
func Run(ctx context.Context, log *slog.Logger, db sqldb.DB, cfg Config, duty func(context.Context)) {
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	if cfg.Check <= 0 {
		cfg.Check = 5 * time.Second
	}
	for ctx.Err() == nil {
		led, err := term(ctx, log, db, cfg, duty)
		if err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "leader election", "key", cfg.Key, "err", err)
		}
		if led {
			continue // lost it: try again at once
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.Retry/2 + rand.N(cfg.Retry/2+1)):
		}
	}
}

// aliveTimeout is the least time a leader's check waits for the database.
const aliveTimeout = 5 * time.Second

// term makes one attempt to lead and, on success, leads until ctx ends or the
// session is lost. It reports whether it led.
func term(ctx context.Context, log *slog.Logger, db sqldb.DB, cfg Config, duty func(context.Context)) (bool, error) {
	session, got, err := db.TryLockSession(ctx, cfg.Key)
	if err != nil {
		return false, fmt.Errorf("try lock: %w", err)
	}
	if !got {
		return false, nil
	}
	defer session.Release()
	log.InfoContext(ctx, "became leader", "key", cfg.Key)
	dutyCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		duty(dutyCtx)
	}()
	t := time.NewTicker(cfg.Check)
	defer t.Stop()
	var lost error
	for lost == nil {
		select {
		case <-ctx.Done():
		case <-done:
		case <-t.C:
			// A slow answer is not a lost lock: a check cut off at its own
			// interval made leadership flap on a busy database (and pgx
			// closes a connection whose query is cancelled, which would
			// really drop the lock).
			cctx, cancel := context.WithTimeout(ctx, max(cfg.Check, aliveTimeout))
			lost = session.Alive(cctx)
			cancel()
			continue
		}
		break
	}
	stop()
	<-done
	if lost != nil {
		log.WarnContext(ctx, "lost leadership", "key", cfg.Key, "err", lost)
	}
	return true, lost
}
