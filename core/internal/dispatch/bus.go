package dispatch

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/backoff"
)

// Channel is the notification channel core replicas share.
const Channel = "ytcaption_dispatch"

// Bus carries wake-ups within a core process and, through the database's
// notifications (sqldb.DB's Notify and Listen: PostgreSQL's NOTIFY, or
// in-process on SQLite), to every other replica on the same database: a job
// made ready by one replica wakes an agent long-polling another at once.
// Notifications are sent after the state change has committed and may be
// lost (a crash in between, a listener reconnecting); the pollers' fallback
// covers that.
type Bus struct {
	Queued  *Signal // a job was queued or requeued for download
	Ready   *Signal // a job became ready for a gpu-node
	Cancels *Keyed  // a held job was cancelled, by id
	Changed *Keyed  // a job's status, progress or transcript changed, by id (for watchers)

	db       sqldb.DB
	instance string
	log      *slog.Logger
}

// NewBus returns a bus on db; instance names this replica, so that it can
// tell its own notifications (already delivered locally) from others'.
func NewBus(log *slog.Logger, db sqldb.DB, instance string) *Bus {
	return &Bus{Queued: NewSignal(), Ready: NewSignal(), Cancels: NewKeyed(), Changed: NewKeyed(), db: db, instance: instance, log: log}
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
	payload := kind + ":" + b.instance
	if id != "" {
		payload += ":" + id
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := b.db.Notify(ctx, Channel, payload); err != nil {
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

// Listen receives other replicas' notifications until ctx ends, retrying
// with backoff when the database fails. When notifications may have been lost
// (the listener reconnected) it wakes every poller to look again.
func (b *Bus) Listen(ctx context.Context) {
	var l sqldb.Listener
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	for attempt := 0; ctx.Err() == nil; {
		var err error
		if l == nil {
			if l, err = b.db.Listen(ctx, Channel); err == nil && attempt > 0 {
				b.wakeAll() // a new subscription: what was sent before it is lost
			}
		}
		if l != nil {
			var n sqldb.Notification
			if n, err = l.Next(ctx); err == nil {
				attempt = 0
				if n.Lost {
					b.wakeAll()
				} else {
					b.deliver(n.Payload)
				}
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		attempt++
		d := backoff.Full(attempt, 100*time.Millisecond, 10*time.Second)
		b.log.WarnContext(ctx, "dispatch listener lost its connection", "err", err, "retry_in", d)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// wakeAll wakes the pollers after notifications may have been lost. Watchers
// and held heartbeats keep their own fallback polls.
func (b *Bus) wakeAll() {
	b.Queued.Notify()
	b.Ready.Notify()
}
