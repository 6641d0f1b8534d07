package dispatch

import (
	"context"
	"log/slog"
	"strings"
	"sync"
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

	// Changes waiting to go to the other replicas (publish), whether a
	// sender is on its way with them, and whether some were dropped since
	// the last that went.
	pubMu   sync.Mutex
	pending []string
	sending bool
	dropped bool
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

// maxUnsent bounds the changes waiting to go to the other replicas while
// the database does not take them; past it they are dropped, and the
// replicas told to look again instead (lost).
const maxUnsent = 10000

// lost is the payload that tells the other replicas some changes never
// reached them: they wake every poller (wakeAll), as after reconnecting.
const lost = "*"

// publish sends a change to the other replicas, off the caller's path: a
// claim or a completion used to wait for a NOTIFY round trip of its own
// (12% of core's CPU per job in the dispatch benchmark, and a commit
// PostgreSQL serialises), and a database outage held the caller. Changes
// go in order, in batches: a sender goroutine takes everything waiting,
// sends it in one Notify, and goes on until nothing waits, so a lone change
// goes at once and a busy replica sends one round trip for many. What
// fails to go is dropped with whatever waits behind it, and the next batch
// begins with lost, so the receivers look again for themselves; the
// pollers' fallback covers the gap meanwhile, as for any lost
// notification.
func (b *Bus) publish(_ context.Context, c store.Change) {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if len(b.pending) >= maxUnsent {
		b.pending, b.dropped = b.pending[:0], true
	}
	b.pending = append(b.pending, encode(c, b.instance))
	if !b.sending {
		b.sending = true
		go b.send()
	}
}

// send sends what publish queued until nothing is left.
func (b *Bus) send() {
	for {
		b.pubMu.Lock()
		batch := b.pending
		if b.dropped {
			batch = append([]string{encode(store.Change{JobID: lost}, b.instance)}, batch...)
		}
		b.pending, b.dropped = nil, false
		if len(batch) == 0 {
			b.sending = false
			b.pubMu.Unlock()
			return
		}
		b.pubMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := b.db.Notify(ctx, Channel, batch...)
		cancel()
		if err != nil {
			// What waits goes too, and the sender stops: against a
			// database that is away it would only spin. The next change
			// starts a sender, whose batch begins with lost.
			b.log.Warn("publish dispatch events", "changes", len(batch), "err", err)
			b.pubMu.Lock()
			b.pending, b.dropped, b.sending = nil, true, false
			b.pubMu.Unlock()
			return
		}
	}
}

// deliver applies a notification from another replica to local waiters.
func (b *Bus) deliver(payload string) {
	c, instance, ok := decode(payload)
	switch {
	case !ok || instance == b.instance:
		// not ours to read, or already delivered locally
	case c.JobID == lost:
		b.wakeAll()
	default:
		b.wake(c)
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
	b.Feed.lost()
}
