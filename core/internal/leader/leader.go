// Package leader elects one core replica to run maintenance loops (lease
// rescue now, retention later). Leadership is a Postgres session advisory lock
// held on a connection taken out of the pool: it ends when the holder stops or
// its connection dies, and another replica takes over within one retry period.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config tunes an election.
type Config struct {
	Key   int64         // advisory lock key; one per kind of duty
	Retry time.Duration // how often a follower tries to take over; default 5 s
	Check time.Duration // how often a leader checks its connection; default 5 s
}

// Run campaigns until ctx ends. While this process leads it runs duty with a
// context that is cancelled as soon as leadership is lost.
func Run(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool, cfg Config, duty func(context.Context)) {
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	if cfg.Check <= 0 {
		cfg.Check = 5 * time.Second
	}
	for ctx.Err() == nil {
		led, err := term(ctx, log, pool, cfg, duty)
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

// term makes one attempt to lead and, on success, leads until ctx ends or the
// connection fails. It reports whether it led.
func term(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool, cfg Config, duty func(context.Context)) (bool, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire connection: %w", err)
	}
	// Session locks live as long as the connection: keep it out of the pool.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx))
	var got bool
	if err := pc.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", cfg.Key).Scan(&got); err != nil {
		return false, fmt.Errorf("try lock: %w", err)
	}
	if !got {
		return false, nil
	}
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
			pctx, cancel := context.WithTimeout(ctx, cfg.Check)
			lost = pc.Ping(pctx)
			cancel()
			continue
		}
		break
	}
	stop()
	<-done
	if lost != nil {
		log.WarnContext(ctx, "lost leadership", "key", cfg.Key, "err", lost)
	} else {
		// Closing the connection releases the lock too; unlock explicitly so a
		// follower need not wait for the server to notice.
		_, _ = pc.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", cfg.Key)
	}
	return true, lost
}
