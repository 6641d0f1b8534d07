package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ytcaption/ytcaption/internal/backoff"
)

// Channel is the Postgres NOTIFY channel core replicas share.
const Channel = "ytcaption_dispatch"

// Bus carries wake-ups within a core process and, through Postgres
// LISTEN/NOTIFY, to every other replica on the same database: a job made ready
// by one replica wakes an agent long-polling another at once. Notifications
// are sent after the state change has committed and may be lost (a crash in
// between, a listener reconnecting); the pollers' fallback covers that.
type Bus struct {
	Queued  *Signal // a job was queued or requeued for download
	Ready   *Signal // a job became ready for a gpu-node
	Cancels *Keyed  // a held job was cancelled, by id
	Changed *Keyed  // a job's status, progress or transcript changed, by id (for watchers)

	pool     *pgxpool.Pool // nil: in-process only
	instance string
	log      *slog.Logger
}

// NewBus returns a bus. With a nil pool it works inside this process only.
func NewBus(log *slog.Logger, pool *pgxpool.Pool, instance string) *Bus {
	return &Bus{Queued: NewSignal(), Ready: NewSignal(), Cancels: NewKeyed(), Changed: NewKeyed(), pool: pool, instance: instance, log: log}
}

// Event kinds on the wire: "<kind>:<instance>[:<job id>]".
const (
	kindQueued    = "queued"
	kindReady     = "ready"
	kindCancelled = "cancelled"
	kindChanged   = "changed"
)

// JobQueued announces a queued job.
func (b *Bus) JobQueued(ctx context.Context) {
	b.Queued.Notify()
	b.publish(ctx, kindQueued, "")
}

// JobReady announces a job ready for transcription.
func (b *Bus) JobReady(ctx context.Context) {
	b.Ready.Notify()
	b.publish(ctx, kindReady, "")
}

// JobCancelled announces that a job a stage holds was cancelled.
func (b *Bus) JobCancelled(ctx context.Context, id string) {
	b.Cancels.Notify(id)
	b.publish(ctx, kindCancelled, id)
}

// JobChanged wakes whoever watches the job, here and on other replicas.
func (b *Bus) JobChanged(ctx context.Context, id string) {
	b.Changed.Notify(id)
	b.publish(ctx, kindChanged, id)
}

func (b *Bus) publish(ctx context.Context, kind, id string) {
	if b.pool == nil {
		return
	}
	payload := kind + ":" + b.instance
	if id != "" {
		payload += ":" + id
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if _, err := b.pool.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, payload); err != nil {
		b.log.WarnContext(ctx, "publish dispatch event", "kind", kind, "err", err)
	}
}

// deliver applies a notification from another replica to local waiters.
func (b *Bus) deliver(payload string) {
	kind, rest, _ := strings.Cut(payload, ":")
	instance, id, _ := strings.Cut(rest, ":")
	if instance == b.instance {
		return // already delivered locally
	}
	switch kind {
	case kindQueued:
		b.Queued.Notify()
	case kindReady:
		b.Ready.Notify()
	case kindCancelled:
		b.Cancels.Notify(id)
	case kindChanged:
		b.Changed.Notify(id)
	}
}

// Listen receives other replicas' notifications until ctx ends, reconnecting
// with backoff when the connection drops. After a reconnect it wakes every
// poller, since notifications sent meanwhile are lost.
func (b *Bus) Listen(ctx context.Context) {
	if b.pool == nil {
		return
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := b.listen(ctx, attempt > 0)
		if ctx.Err() != nil {
			return
		}
		d := backoff.Full(attempt+1, 100*time.Millisecond, 10*time.Second)
		b.log.WarnContext(ctx, "dispatch listener lost its connection", "err", err, "retry_in", d)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

func (b *Bus) listen(ctx context.Context, reconnected bool) error {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire listener connection: %w", err)
	}
	// The connection leaves the pool: LISTEN state must not leak to other users.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx))
	if _, err := pc.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if reconnected {
		b.Queued.Notify()
		b.Ready.Notify()
	}
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		b.deliver(n.Payload)
	}
}
