package dispatch

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
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
	Feed    *Feed   // every change, for the edges' caches

	db       sqldb.DB
	instance string
	log      *slog.Logger
}

// NewBus returns a bus on db; instance names this replica, so that it can
// tell its own notifications (already delivered locally) from others'.
func NewBus(log *slog.Logger, db sqldb.DB, instance string) *Bus {
	return &Bus{Queued: NewSignal(), Ready: NewSignal(), Cancels: NewKeyed(), Changed: NewKeyed(), Feed: NewFeed(), db: db, instance: instance, log: log}
}

// Announce wakes whoever a committed job change concerns, here and on every
// other replica: the store reports each change (store.OnChange) and this is
// the one place that decides what it wakes (see wake).
func (b *Bus) Announce(ctx context.Context, c store.Change) {
	b.wake(c)
	b.publish(ctx, c)
}

// wake maps a change to the signals it fires: a job reaching queued wakes
// the fetch workers, ready the long-polling agents; a held job (downloading
// or transcribing) cancelled wakes its holder's heartbeat or download; and
// every change wakes the job's watchers.
func (b *Bus) wake(c store.Change) {
	if c.From != c.To {
		switch c.To {
		case job.StatusQueued:
			b.Queued.Notify()
		case job.StatusReady:
			b.Ready.Notify()
		case job.StatusCancelled:
			if c.From == job.StatusDownloading || c.From == job.StatusTranscribing {
				b.Cancels.Notify(c.JobID)
			}
		}
	}
	b.Changed.Notify(c.JobID)
	if c.From != "" {
		b.Feed.changed(c.JobID)
	}
}

// The wire format of a change: "<job id>:<from>:<to>:<instance>". The
// instance is last, so that it may hold colons; job ids and statuses do not.
func encode(c store.Change, instance string) string {
	return c.JobID + ":" + string(c.From) + ":" + string(c.To) + ":" + instance
}

func decode(payload string) (c store.Change, instance string, ok bool) {
	f := strings.SplitN(payload, ":", 4)
	if len(f) != 4 {
		return c, "", false
	}
	return store.Change{JobID: f[0], From: job.Status(f[1]), To: job.Status(f[2])}, f[3], true
}

func (b *Bus) publish(ctx context.Context, c store.Change) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := b.db.Notify(ctx, Channel, encode(c, b.instance)); err != nil {
		b.log.WarnContext(ctx, "publish dispatch event", "job_id", c.JobID, "err", err)
	}
}

// deliver applies a notification from another replica to local waiters.
func (b *Bus) deliver(payload string) {
	c, instance, ok := decode(payload)
	if !ok || instance == b.instance {
		return // not ours to read, or already delivered locally
	}
	b.wake(c)
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
	b.Feed.lost()
}
