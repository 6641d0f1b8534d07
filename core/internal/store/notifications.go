package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// Notification is one message to send: a job's end, to a webhook or an
// address. The outbox row is written by the trigger that settles the job.
type Notification struct {
	ID, JobID, UserID string
	Channel           string // "webhook" or "email"
	Target            string
	Event             string // "job.succeeded", "job.failed", "job.cancelled"
	State             string // "pending", "delivered", "failed"
	Attempts          int    // made so far, this one included once claimed
	NextAttemptAt     time.Time
	CreatedAt         time.Time
	WebhookSecret     string // the user's, to sign with
	Log               []DeliveryAttempt
}

// DeliveryAttempt is one try at delivering a notification.
type DeliveryAttempt struct {
	At         time.Time
	StatusCode int
	Error      string
	Duration   time.Duration
}

// notificationColumns read a notification n and its user's webhook secret. The
// secret is a subquery, not a join: SQLite's RETURNING may not name the other
// tables of an UPDATE … FROM, and ClaimNotifications returns these.
const notificationColumns = `n.id::text, n.job_id::text, n.user_id::text, n.channel, n.target, n.event, n.state, n.attempts,
	n.next_attempt_at, n.created_at, (SELECT webhook_secret FROM users WHERE id = n.user_id)`

func scanNotification(r sqldb.Row) (Notification, error) {
	var n Notification
	err := r.Scan(&n.ID, &n.JobID, &n.UserID, &n.Channel, &n.Target, &n.Event, &n.State, &n.Attempts, &n.NextAttemptAt, &n.CreatedAt, &n.WebhookSecret)
	return n, err
}

// ClaimNotifications takes up to limit due notifications for delivery. A
// claim moves the next attempt hold later, so a replica that dies while
// delivering leaves the notification to be tried again then: delivery is at
// least once, and receivers deduplicate on the webhook id.
func (s *Store) ClaimNotifications(ctx context.Context, limit int, hold time.Duration) ([]Notification, error) {
	rows, err := s.db.Query(ctx, `
		WITH due AS (
			SELECT id FROM notifications WHERE state = 'pending' AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
		)
		UPDATE notifications AS n SET attempts = n.attempts + 1, next_attempt_at = now() + $2::bigint * interval '1 millisecond'
		FROM due WHERE n.id = due.id
		RETURNING `+notificationColumns, limit, ms(hold))
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	return out, nil
}

// NotificationResult records an attempt. retryIn > 0 schedules the next
// one; 0 with a.Error set gives up; no error means delivered.
func (s *Store) NotificationResult(ctx context.Context, id string, a DeliveryAttempt, retryIn time.Duration) error {
	return s.inTx(ctx, "notification result", func(tx sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO notification_attempts (notification_id, status_code, error, duration_ms) VALUES ($1, $2, $3, $4)`,
			id, a.StatusCode, a.Error, a.Duration.Milliseconds()); err != nil {
			return fmt.Errorf("log notification attempt: %w", err)
		}
		var err error
		switch {
		case a.Error == "":
			_, err = tx.Exec(ctx, `UPDATE notifications SET state = 'delivered', finished_at = now() WHERE id = $1`, id)
		case retryIn > 0:
			_, err = tx.Exec(ctx, `UPDATE notifications SET next_attempt_at = now() + $2::bigint * interval '1 millisecond' WHERE id = $1`, id, ms(retryIn))
		default:
			_, err = tx.Exec(ctx, `UPDATE notifications SET state = 'failed', finished_at = now() WHERE id = $1`, id)
		}
		if err != nil {
			return fmt.Errorf("notification result: %w", err)
		}
		return nil
	})
}

// PostponeNotification gives a claimed notification its attempt back and
// schedules it after d: its target's circuit breaker is open.
func (s *Store) PostponeNotification(ctx context.Context, id string, d time.Duration) error {
	_, err := s.db.Exec(ctx, `UPDATE notifications SET attempts = attempts - 1, next_attempt_at = now() + $2::bigint * interval '1 millisecond' WHERE id = $1`, id, ms(d))
	if err != nil {
		return fmt.Errorf("postpone notification: %w", err)
	}
	return nil
}

// JobNotifications returns a job's notifications with their delivery logs.
func (s *Store) JobNotifications(ctx context.Context, jobID string) ([]Notification, error) {
	if _, err := uuid.Parse(jobID); err != nil {
		return nil, nil // no such job: no notifications
	}
	rows, err := s.db.Query(ctx, `SELECT `+notificationColumns+` FROM notifications n
		WHERE n.job_id = $1 ORDER BY n.created_at, n.channel`, jobID)
	if err != nil {
		return nil, fmt.Errorf("job notifications: %w", err)
	}
	ns, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, fmt.Errorf("job notifications: %w", err)
	}
	for i := range ns {
		ns[i].WebhookSecret = ""
		rows, err := s.db.Query(ctx, `SELECT at, status_code, error, duration_ms FROM notification_attempts WHERE notification_id = $1 ORDER BY at`, ns[i].ID)
		if err != nil {
			return nil, fmt.Errorf("delivery log: %w", err)
		}
		ns[i].Log, err = sqldb.Collect(rows, nil, func(r sqldb.Row) (DeliveryAttempt, error) {
			var a DeliveryAttempt
			var ms int64
			err := r.Scan(&a.At, &a.StatusCode, &a.Error, &ms)
			a.Duration = time.Duration(ms) * time.Millisecond
			return a, err
		})
		if err != nil {
			return nil, fmt.Errorf("delivery log: %w", err)
		}
	}
	return ns, nil
}
