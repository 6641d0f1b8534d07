package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// A batch's states. A batch of a playlist or channel starts enumerating
// (core lists its entries with yt-dlp and adds one child job per entry); a
// list of URLs starts running, its children created with it. A running
// batch is done once every child has finished, whichever way; it failed
// only when enumeration failed before adding any child.
const (
	BatchEnumerating = "enumerating"
	BatchRunning     = "running"
	BatchDone        = "done"
	BatchFailed      = "failed"
	BatchCancelled   = "cancelled"
)

// Batch orders: a playlist's own order, or newest upload first.
const (
	OrderPlaylist = "playlist"
	OrderNewest   = "newest"
)

// MaxBatchItems bounds a batch however it was asked for: a channel can hold
// tens of thousands of videos, and every child is a job the user pays for.
const MaxBatchItems = 1000

// BatchOptions are the children's options: CreateJob's.
type BatchOptions struct {
	Language, Engine, Model string
	Source                  job.Source
	Task, Prompt            string
	WebhookURL              string
}

// BatchEntry is one child to create: a URL as CreateJob's validation left it.
type BatchEntry struct {
	URL, CanonicalURL string
	SourceKind        job.SourceKind
}

// NewBatch is what CreateBatch needs: a source to enumerate (URL and
// CanonicalURL) or Entries, a list of URLs whose children are created at once.
type NewBatch struct {
	UserID            string
	URL, CanonicalURL string // the playlist or channel; ignored when Entries is set
	Entries           []BatchEntry
	MaxItems          int    // 0: 100
	Order             string // "" is playlist order
	After, Before     string // YYYYMMDD, inclusive; "" is open
	Options           BatchOptions
	// IdempotencyKey, when set, makes the creation happen once per user and
	// key; Fingerprint identifies the request's parameters.
	IdempotencyKey string
	Fingerprint    []byte
}

// BatchCounts are a batch's children by state; Running is downloading,
// ready or transcribing.
type BatchCounts struct {
	Total, Queued, Running, Succeeded, Failed, Cancelled int
}

// Batch is a stored batch with its children's counts.
type Batch struct {
	ID, UserID, Status       string
	URL, CanonicalURL        string // "list" for a list of URLs
	MaxItems                 int
	Order, After, Before     string
	Options                  BatchOptions
	Entries, Skipped         int // what enumeration found, and left out
	Attempt                  int // enumeration's, the fence of its writes
	ErrorCode, ErrorMessage  string
	CreatedAt                time.Time
	EnumeratedAt, FinishedAt time.Time // zero until then
	Counts                   BatchCounts
	LeaseOwner               string
	LeaseExpiresAt           time.Time
	IdempotencyKey           string
	fingerprint              []byte
}

// ListSource is the url of a batch made from a list of URLs.
const ListSource = "list"

const batchColumns = `id, user_id, status, url, canonical_url, max_items, item_order, after_date, before_date,
	language, engine, model, source, task, prompt, webhook_url, entries, skipped, attempt, error_code, error_message,
	created_at, enumerated_at, finished_at, lease_owner, lease_expires_at, idempotency_key, fingerprint`

func scanBatch(row sqldb.Row) (Batch, error) {
	var b Batch
	var enumerated, finished, lease *time.Time
	err := row.Scan(&b.ID, &b.UserID, &b.Status, &b.URL, &b.CanonicalURL, &b.MaxItems, &b.Order, &b.After, &b.Before,
		&b.Options.Language, &b.Options.Engine, &b.Options.Model, &b.Options.Source, &b.Options.Task, &b.Options.Prompt, &b.Options.WebhookURL,
		&b.Entries, &b.Skipped, &b.Attempt, &b.ErrorCode, &b.ErrorMessage,
		&b.CreatedAt, &enumerated, &finished, &b.LeaseOwner, &lease, &b.IdempotencyKey, &b.fingerprint)
	if err != nil {
		return Batch{}, err
	}
	if enumerated != nil {
		b.EnumeratedAt = *enumerated
	}
	if finished != nil {
		b.FinishedAt = *finished
	}
	if lease != nil {
		b.LeaseExpiresAt = *lease
	}
	return b, nil
}

// unfinished are the states a child has not finished in.
var unfinished = activeStatuses

// CreateBatch records a batch, once per n.IdempotencyKey (a repeat with the
// same fingerprint returns the first batch and replayed=true; another
// fingerprint fails idempotency_key_mismatch). A list's children are created
// in the same transaction, so a list batch is never half made.
//
// Quotas are checked up front, against every child the batch may create: a
// list counts its URLs, a playlist its max_items (the most it may add —
// enumeration has not run yet). With a concurrency limit, the batch is
// refused unless that many more jobs fit beside the user's running ones;
// with a monthly limit, it is refused once the month is used up (a child's
// length is unknown until it is downloaded, so minutes cannot be counted
// ahead). Children are not checked one by one afterwards: the batch was.
func (s *Store) CreateBatch(ctx context.Context, n NewBatch) (b Batch, replayed bool, err error) {
	n = batchDefaults(n)
	status, url, canonical := BatchEnumerating, n.URL, n.CanonicalURL
	if n.Entries != nil {
		status, url, canonical = BatchRunning, ListSource, ListSource
		n.MaxItems = len(n.Entries)
	}
	if n.MaxItems > MaxBatchItems {
		return Batch{}, false, job.Errorf(job.CodeInvalidArgument, "a batch has at most %d items", MaxBatchItems)
	}
	var created []Change
	err = s.inTx(ctx, "create batch", func(tx sqldb.Tx) error {
		// replay answers a key already used: the same request gets its batch,
		// another is refused.
		replay := func() error {
			prior, err := scanBatch(tx.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE user_id = $1 AND idempotency_key = $2`, n.UserID, n.IdempotencyKey))
			switch {
			case err != nil:
				return err
			case !bytes.Equal(prior.fingerprint, n.Fingerprint):
				return job.Errorf(job.CodeIdempotencyKey, "this Idempotency-Key was used with different parameters")
			}
			b, replayed = prior, true
			return nil
		}
		if n.IdempotencyKey != "" {
			if err := replay(); !errors.Is(err, sqldb.ErrNoRows) {
				return err
			}
		}
		if err := checkBatchQuota(ctx, tx, n.UserID, n.MaxItems); err != nil {
			return err
		}
		o := n.Options
		// A concurrent creation with the same key makes this insert wait for
		// its transaction and then do nothing; the replay, a new statement,
		// sees its batch. Exactly one batch, whatever the timing.
		b, err = scanBatch(tx.QueryRow(ctx, `
			INSERT INTO batches (user_id, status, url, canonical_url, max_items, item_order, after_date, before_date,
				language, engine, model, source, task, prompt, webhook_url, entries, idempotency_key, fingerprint, enumerated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
				CASE WHEN $2 = 'running' THEN now() END)
			ON CONFLICT DO NOTHING
			RETURNING `+batchColumns,
			n.UserID, status, url, canonical, n.MaxItems, n.Order, n.After, n.Before,
			o.Language, o.Engine, o.Model, string(o.Source), o.Task, o.Prompt, o.WebhookURL, len(n.Entries), n.IdempotencyKey, n.Fingerprint))
		if errors.Is(err, sqldb.ErrNoRows) && n.IdempotencyKey != "" {
			return replay()
		}
		if err != nil {
			return err
		}
		created, err = insertChildren(ctx, tx, b, 0, n.Entries)
		return err
	})
	if err != nil {
		var je *job.Error
		if errors.As(err, &je) {
			return Batch{}, false, err
		}
		return Batch{}, false, fmt.Errorf("create batch: %w", err)
	}
	s.report(ctx, created...)
	if b.Counts, err = s.BatchCounts(ctx, b.ID); err != nil {
		return Batch{}, false, err
	}
	return b, replayed, nil
}

func batchDefaults(n NewBatch) NewBatch {
	if n.MaxItems <= 0 {
		n.MaxItems = 100
	}
	if n.Order == "" {
		n.Order = OrderPlaylist
	}
	o := &n.Options
	if o.Language == "" {
		o.Language = "auto"
	}
	if o.Source == "" {
		o.Source = job.SourceAuto
	}
	if o.Task == "" {
		o.Task = engines.Transcribe
	}
	return n
}

// MaxOpenBatches bounds a user's batches that have not ended, whatever the
// plan: each may hold MaxBatchItems jobs, and an enumeration is a yt-dlp run
// on this server's addresses.
const MaxOpenBatches = 10

// checkBatchQuota is checkQuota for want jobs at once (see CreateBatch),
// and MaxOpenBatches.
func checkBatchQuota(ctx context.Context, tx sqldb.Tx, userID string, want int) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
		return fmt.Errorf("quota of %s: %w", userID, err)
	}
	var open int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM batches WHERE user_id = $1 AND status IN ('enumerating', 'running')`, userID).Scan(&open); err != nil {
		return fmt.Errorf("open batches of %s: %w", userID, err)
	}
	if open >= MaxOpenBatches {
		return job.Errorf(job.CodeQuotaExceeded, "%d of your batches have not ended (at most %d at once): wait for one, or cancel one", open, MaxOpenBatches)
	}
	u, err := scanUsage(tx.QueryRow(ctx, usageQuery, activeStatuses, userID))
	if err != nil {
		return fmt.Errorf("quota of %s: %w", userID, err)
	}
	switch {
	case u.MaxConcurrent != Unlimited && u.Active+want > u.MaxConcurrent:
		return job.Errorf(job.CodeQuotaExceeded, "the batch may create %d jobs and %d of %d concurrent jobs are running: ask for at most %d items",
			want, u.Active, u.MaxConcurrent, max(0, u.MaxConcurrent-u.Active))
	case u.MonthlyMinutes != Unlimited && u.RemainingMS() == 0:
		return job.Errorf(job.CodeQuotaExceeded, "this month's %d audio minutes are used up (%.1f used, %.1f in running jobs, 0 remain); the quota resets at %s",
			u.MonthlyMinutes, float64(u.UsedMS)/60_000, float64(u.PendingMS)/60_000, u.ResetsAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// insertChildren adds b's children for entries, numbered from first, each
// once: an entry whose canonical URL the batch already has is skipped.
func insertChildren(ctx context.Context, tx sqldb.Tx, b Batch, first int, entries []BatchEntry) ([]Change, error) {
	var cs []Change
	o := b.Options
	for i, e := range entries {
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO jobs (user_id, status, url, canonical_url, source_kind, language, engine, model, source, task, prompt, webhook_url,
				batch_id, batch_key, batch_index)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT DO NOTHING
			RETURNING id`,
			b.UserID, string(job.StatusQueued), e.URL, e.CanonicalURL, string(e.SourceKind), o.Language, o.Engine, o.Model, string(o.Source),
			o.Task, o.Prompt, o.WebhookURL, b.ID, e.CanonicalURL, first+i).Scan(&id)
		if errors.Is(err, sqldb.ErrNoRows) {
			continue // enumerated before
		}
		if err != nil {
			return nil, fmt.Errorf("add child of batch %s: %w", b.ID, err)
		}
		cs = append(cs, Change{JobID: id, To: job.StatusQueued})
	}
	return cs, nil
}

// ClaimEnumeration takes the oldest batch waiting to be enumerated (new, or
// its last enumerator's lease expired), leasing it to owner and bumping its
// attempt: the fence AddBatchJobs and FinishEnumeration check.
func (s *Store) ClaimEnumeration(ctx context.Context, owner string, lease time.Duration) (Batch, bool, error) {
	b, err := scanBatch(s.db.QueryRow(ctx, `
		UPDATE batches SET attempt = attempt + 1, lease_owner = $1, lease_expires_at = now() + $2::bigint * interval '1 millisecond'
		WHERE id = (
			SELECT id FROM batches WHERE status = 'enumerating' AND (lease_expires_at IS NULL OR lease_expires_at <= now())
			ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+batchColumns, owner, ms(lease)))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Batch{}, false, nil
	}
	if err != nil {
		return Batch{}, false, fmt.Errorf("claim batch: %w", err)
	}
	return b, true, nil
}

// lockEnumeration locks a batch the caller holds for enumeration, or fails
// lease_lost: it was cancelled, or another enumerator took it over.
func lockEnumeration(ctx context.Context, tx sqldb.Tx, id string, attempt int) (Batch, error) {
	b, err := scanBatch(tx.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches
		WHERE id = $1 AND attempt = $2 AND status = 'enumerating' AND NOT `+expiredSQL+` FOR UPDATE`, id, attempt))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Batch{}, fmt.Errorf("batch %s attempt %d: %w", id, attempt, job.ErrLeaseLost)
	}
	return b, err
}

// AddBatchJobs adds the children of entries, numbered from first, to a
// batch held for enumeration (attempt is its claim's), and returns how many
// were new. An entry already added — by an earlier, interrupted enumeration
// — is not added again.
func (s *Store) AddBatchJobs(ctx context.Context, id string, attempt, first int, entries []BatchEntry) (int, error) {
	var cs []Change
	err := s.inTx(ctx, "add batch jobs", func(tx sqldb.Tx) error {
		b, err := lockEnumeration(ctx, tx, id, attempt)
		if err != nil {
			return err
		}
		cs, err = insertChildren(ctx, tx, b, first, entries)
		return err
	})
	if err != nil {
		return 0, err
	}
	s.report(ctx, cs...)
	return len(cs), nil
}

// FinishEnumeration records what enumeration found (entries) and left out
// (skipped) and starts the batch running.
func (s *Store) FinishEnumeration(ctx context.Context, id string, attempt, entries, skipped int) error {
	return s.inTx(ctx, "finish enumeration", func(tx sqldb.Tx) error {
		if _, err := lockEnumeration(ctx, tx, id, attempt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE batches SET status = 'running', entries = $2, skipped = $3, enumerated_at = now(),
			lease_owner = '', lease_expires_at = NULL WHERE id = $1`, id, entries, skipped)
		return err
	})
}

// FailEnumeration records an enumeration that failed. A retryable failure
// with attempts left goes back for another enumerator after `after`;
// otherwise a batch with children runs them (the error kept, for the user
// to see why the list is short) and one without fails.
func (s *Store) FailEnumeration(ctx context.Context, id string, attempt int, e *job.Error, after time.Duration) (string, error) {
	status := BatchEnumerating
	err := s.inTx(ctx, "fail enumeration", func(tx sqldb.Tx) error {
		if _, err := lockEnumeration(ctx, tx, id, attempt); err != nil {
			return err
		}
		if e.Retryable && attempt < 3 {
			_, err := tx.Exec(ctx, `UPDATE batches SET lease_owner = '', lease_expires_at = now() + $2::bigint * interval '1 millisecond',
				error_code = $3, error_message = $4 WHERE id = $1`, id, ms(after), e.Code, e.Message)
			return err
		}
		var children int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE batch_id = $1`, id).Scan(&children); err != nil {
			return err
		}
		status = BatchFailed
		if children > 0 {
			status = BatchRunning
		}
		_, err := tx.Exec(ctx, `UPDATE batches SET status = $2, lease_owner = '', lease_expires_at = NULL, error_code = $3, error_message = $4,
			enumerated_at = now(), finished_at = CASE WHEN $2 = 'failed' THEN now() END WHERE id = $1`, id, status, e.Code, e.Message)
		return err
	})
	return status, err
}

// BatchDoneEvent is the outbox event of a batch's end.
const BatchDoneEvent = "batch.done"

// FinishBatches marks done every running batch whose children have all
// finished and returns their ids. A batch's end is derived from its
// children, so it is swept rather than announced: the store's change hook
// reports jobs only, and a child finishing would otherwise have to look at
// its siblings in every finishing transaction. The same transaction writes
// the end's webhook to the outbox (the batch's webhook_url, else the
// user's), so a batch that ended is notified once, crash or not. The
// outbox row names the batch's first child as its job: the outbox is keyed
// by job, and the notifier finds the batch from it (BatchOfJob).
func (s *Store) FinishBatches(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.inTx(ctx, "finish batches", func(tx sqldb.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE batches SET status = 'done', finished_at = now()
			WHERE status = 'running' AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = batches.id AND j.status = ANY($1))
			RETURNING id`, unfinished)
		if ids, err = sqldb.Collect(rows, err, func(r sqldb.Row) (id string, err error) { return id, r.Scan(&id) }); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `
				INSERT INTO notifications (job_id, user_id, channel, target, event)
				SELECT (SELECT j.id FROM jobs j WHERE j.batch_id = b.id ORDER BY j.batch_index, j.id LIMIT 1), b.user_id, 'webhook',
					COALESCE(NULLIF(b.webhook_url, ''), u.webhook_url), $2
				FROM batches b JOIN users u ON u.id = b.user_id
				WHERE b.id = $1 AND COALESCE(NULLIF(b.webhook_url, ''), u.webhook_url) <> ''
					AND EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id)`, id, BatchDoneEvent); err != nil {
				return fmt.Errorf("batch %s webhook: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// BatchOfJob returns the batch a job belongs to, with its counts.
func (s *Store) BatchOfJob(ctx context.Context, jobID string) (Batch, error) {
	var id string
	err := s.db.QueryRow(ctx, `SELECT coalesce(batch_id::text, '') FROM jobs WHERE id = $1`, jobID).Scan(&id)
	switch {
	case errors.Is(err, sqldb.ErrNoRows) || (err == nil && id == ""):
		return Batch{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("job %s is in no batch", jobID)}
	case err != nil:
		return Batch{}, fmt.Errorf("batch of job %s: %w", jobID, err)
	}
	return s.GetBatch(ctx, "", id)
}

// BatchCounts counts a batch's children by state.
func (s *Store) BatchCounts(ctx context.Context, id string) (BatchCounts, error) {
	m, err := s.countByStatus(ctx, `SELECT status, count(*) FROM jobs WHERE batch_id = $1 GROUP BY status`, id)
	if err != nil {
		return BatchCounts{}, fmt.Errorf("count batch %s: %w", id, err)
	}
	c := BatchCounts{Queued: m[job.StatusQueued], Succeeded: m[job.StatusSucceeded], Failed: m[job.StatusFailed], Cancelled: m[job.StatusCancelled],
		Running: m[job.StatusDownloading] + m[job.StatusReady] + m[job.StatusTranscribing]}
	c.Total = c.Queued + c.Running + c.Succeeded + c.Failed + c.Cancelled
	return c, nil
}

// GetBatch returns a batch with its counts. With userID set, another user's
// batch is not found.
func (s *Store) GetBatch(ctx context.Context, userID, id string) (Batch, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Batch{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no batch %s", id)}
	}
	b, err := scanBatch(s.db.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1 AND ($2 = '' OR user_id::text = $2)`, id, userID))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Batch{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no batch %s", id)}
	}
	if err != nil {
		return Batch{}, fmt.Errorf("get batch %s: %w", id, err)
	}
	b.Counts, err = s.BatchCounts(ctx, id)
	return b, err
}

// ListBatches lists a user's batches newest first, limit at a time; before
// is the id of the previous page's last batch ("" for the first page).
func (s *Store) ListBatches(ctx context.Context, userID string, limit int, before string) ([]Batch, error) {
	after := cursor{CreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	if before != "" {
		prior, err := s.GetBatch(ctx, userID, before)
		if err != nil {
			return nil, job.Errorf(job.CodeInvalidArgument, "the cursor is not one of your batches")
		}
		after = cursor{CreatedAt: prior.CreatedAt, ID: prior.ID}
	}
	rows, err := s.db.Query(ctx, `SELECT `+batchColumns+` FROM batches
		WHERE user_id = $1 AND (created_at, id) < ($2, $3::uuid) ORDER BY created_at DESC, id DESC LIMIT $4`,
		userID, after.CreatedAt, after.ID, limit)
	bs, err := sqldb.Collect(rows, err, func(r sqldb.Row) (Batch, error) { return scanBatch(r) })
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	for i := range bs {
		if bs[i].Counts, err = s.BatchCounts(ctx, bs[i].ID); err != nil {
			return nil, err
		}
	}
	return bs, nil
}

// ListBatchJobs lists a batch's children in batch order, limit at a time,
// skipping the first offset (a batch has at most MaxBatchItems children).
func (s *Store) ListBatchJobs(ctx context.Context, userID, id string, limit, offset int) ([]job.Job, error) {
	if _, err := s.GetBatch(ctx, userID, id); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE batch_id = $1
		ORDER BY batch_index, id LIMIT $2 OFFSET $3`, id, limit, offset)
	jobs, err := sqldb.Collect(rows, err, func(r sqldb.Row) (job.Job, error) { return scanJob(r) })
	if err != nil {
		return nil, fmt.Errorf("list batch %s: %w", id, err)
	}
	return jobs, nil
}

// CancelBatch stops a batch: enumeration stops adding children (its next
// write is refused) and every unfinished child is cancelled as CancelJob
// cancels a job. A finished batch is returned unchanged.
func (s *Store) CancelBatch(ctx context.Context, userID, id string) (Batch, error) {
	b, err := s.GetBatch(ctx, userID, id)
	if err != nil || b.Status == BatchDone || b.Status == BatchFailed || b.Status == BatchCancelled {
		return b, err
	}
	err = s.changeTx(ctx, "cancel batch "+id, func(tx sqldb.Tx, cs *changes) error {
		if _, err := tx.Exec(ctx, `UPDATE batches SET status = 'cancelled', finished_at = now(), lease_owner = '', lease_expires_at = NULL
			WHERE id = $1 AND status IN ('enumerating', 'running')`, id); err != nil {
			return err
		}
		type child struct {
			id   string
			from job.Status
		}
		rows, err := tx.Query(ctx, `SELECT id, status FROM jobs WHERE batch_id = $1 AND status = ANY($2) FOR UPDATE`,
			id, froms(job.StatusCancelled, job.StatusQueued, job.StatusDownloading, job.StatusReady, job.StatusTranscribing))
		children, err := sqldb.Collect(rows, err, func(r sqldb.Row) (c child, err error) { return c, r.Scan(&c.id, &c.from) })
		if err != nil {
			return err
		}
		for _, c := range children {
			// As CancelJob: a held child keeps its lease, marked, so its
			// holder hears of the cancel and stops.
			if _, err := tx.Exec(ctx, `
				UPDATE jobs SET status = 'cancelled', error_code = $2, error_message = 'the batch was cancelled by the user',
					cancel_requested = status IN ('downloading', 'transcribing'),
					lease_expires_at = CASE WHEN status IN ('downloading', 'transcribing') THEN lease_expires_at END,
					finished_at = now(), updated_at = now()
				WHERE id = $1 AND status = $3`, c.id, job.CodeCancelled, string(c.from)); err != nil {
				return err
			}
			cs.add(c.id, c.from, job.StatusCancelled)
		}
		return nil
	})
	if err != nil {
		return Batch{}, err
	}
	return s.GetBatch(ctx, userID, id)
}
