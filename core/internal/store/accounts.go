package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// Account is a user as an operator sees it.
type Account struct {
	User
	// Overrides of the plan's quotas; nil: the plan's.
	MonthlyMinutes, MaxConcurrent *int
	WebhookURL, WebhookSecret     string
	Email                         string
	Keys                          int // live keys
}

// selectAccounts reads accounts; callers add WHERE or ORDER BY.
const selectAccounts = `SELECT u.id::text, u.name, u.role, u.created_at, ` + planColumns + `, u.monthly_minutes, u.max_concurrent,
	u.webhook_url, u.webhook_secret, u.email,
	(SELECT count(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL)::int
	FROM users u JOIN plans p ON p.name = u.plan`

func scanAccount(r sqldb.Row) (Account, error) {
	var a Account
	dest := append([]any{&a.ID, &a.Name, &a.Role, &a.CreatedAt}, planDest(&a.Plan)...)
	err := r.Scan(append(dest, &a.MonthlyMinutes, &a.MaxConcurrent, &a.WebhookURL, &a.WebhookSecret, &a.Email, &a.Keys)...)
	return a, err
}

// ListUsers lists every user by name.
func (s *Store) ListUsers(ctx context.Context) ([]Account, error) {
	rows, err := s.db.Query(ctx, selectAccounts+` ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// GetAccount returns the user with this id.
func (s *Store) GetAccount(ctx context.Context, id string) (Account, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Account{}, job.Errorf(job.CodeNotFound, "no user %q", id)
	}
	a, err := scanAccount(s.db.QueryRow(ctx, selectAccounts+` WHERE u.id = $1`, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Account{}, job.Errorf(job.CodeNotFound, "no user %q", id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return a, nil
}

// AccountPatch changes some of a user's settings; nil fields stay.
// Its JSON names are the admin API's: the audit log records a patch as sent.
type AccountPatch struct {
	Plan       *string `json:"plan,omitempty"`
	Role       *string `json:"role,omitempty"`
	WebhookURL *string `json:"webhook_url,omitempty"`
	Email      *string `json:"email,omitempty"`
	// Quota overrides: a value < 0 removes the override (the plan's again).
	MonthlyMinutes      *int `json:"monthly_minutes,omitempty"`
	MaxConcurrent       *int `json:"max_concurrent,omitempty"`
	RotateWebhookSecret bool `json:"rotate_webhook_secret,omitempty"` // draw a new secret (the column's default)
}

// UpdateAccount applies p to the user with this id, audited as actor's doing.
func (s *Store) UpdateAccount(ctx context.Context, actor, id string, p AccountPatch) (Account, error) {
	if p.Role != nil && *p.Role != string(RoleAdmin) && *p.Role != string(RoleUser) {
		return Account{}, job.Errorf(job.CodeInvalidArgument, "role must be admin or user, got %q", *p.Role)
	}
	if p.Plan != nil {
		if _, err := s.GetPlan(ctx, *p.Plan); err != nil {
			return Account{}, err
		}
	}
	override := func(v *int) (set bool, val *int) {
		if v == nil {
			return false, nil
		}
		if *v < 0 {
			return true, nil
		}
		return true, v
	}
	setMin, minutes := override(p.MonthlyMinutes)
	setConc, conc := override(p.MaxConcurrent)
	var a Account
	err := s.inTx(ctx, "update user", func(tx sqldb.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET plan = COALESCE($2, plan), role = COALESCE($3, role),
			webhook_url = COALESCE($4, webhook_url), email = COALESCE($5, email),
			monthly_minutes = CASE WHEN $6 THEN $7 ELSE monthly_minutes END,
			max_concurrent = CASE WHEN $8 THEN $9 ELSE max_concurrent END,
			webhook_secret = CASE WHEN $10 THEN $11 ELSE webhook_secret END
			WHERE id = $1`, id, p.Plan, p.Role, p.WebhookURL, p.Email, setMin, minutes, setConc, conc, p.RotateWebhookSecret, sqldb.NewWebhookSecret())
		if err != nil {
			return fmt.Errorf("update user %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return job.Errorf(job.CodeNotFound, "no user %q", id)
		}
		if a, err = scanAccount(tx.QueryRow(ctx, selectAccounts+` WHERE u.id = $1`, id)); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "update_user", a.Name, map[string]any{"user_id": id, "patch": p})
	})
	return a, err
}

// APIKey describes a key; the key itself is never stored.
type APIKey struct {
	ID, UserID, Name, Prefix string
	CreatedAt                time.Time
	RevokedAt                *time.Time
}

// ListKeys lists a user's keys, newest first, revoked ones included; with
// userID "", every user's.
func (s *Store) ListKeys(ctx context.Context, userID string) ([]APIKey, error) {
	const keys = `SELECT id::text, user_id::text, name, prefix, created_at, revoked_at FROM api_keys`
	var rows sqldb.Rows
	var err error
	switch _, perr := uuid.Parse(userID); {
	case userID == "":
		rows, err = s.db.Query(ctx, keys+` ORDER BY created_at DESC`)
	case perr != nil:
		return nil, nil // no such user: no keys
	default:
		rows, err = s.db.Query(ctx, keys+` WHERE user_id = $1 ORDER BY created_at DESC`, userID)
	}
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (APIKey, error) {
		var k APIKey
		err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.CreatedAt, &k.RevokedAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// IssueKey makes a new key named name for the user, audited as actor's
// doing, and returns it with the key itself: the one time anybody sees it.
func (s *Store) IssueKey(ctx context.Context, actor, userID, name string) (APIKey, string, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return APIKey{}, "", job.Errorf(job.CodeNotFound, "no user %q", userID)
	}
	var k APIKey
	var secret string
	err := s.inTx(ctx, "issue key", func(tx sqldb.Tx) error {
		var err error
		k, secret, err = issueKey(ctx, tx, userID, name)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "create_key", k.Prefix, map[string]any{"user_id": userID, "key_id": k.ID, "name": name})
	})
	return k, secret, err
}

func issueKey(ctx context.Context, tx sqldb.Tx, userID, name string) (APIKey, string, error) {
	secret, err := newKey()
	if err != nil {
		return APIKey{}, "", err
	}
	sum := sha256.Sum256([]byte(secret))
	k := APIKey{UserID: userID, Name: name, Prefix: secret[:8]}
	err = tx.QueryRow(ctx, `INSERT INTO api_keys (user_id, prefix, hash, name) SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
		RETURNING id::text, created_at`, userID, k.Prefix, sum[:], name).Scan(&k.ID, &k.CreatedAt)
	if errors.Is(err, sqldb.ErrNoRows) {
		return APIKey{}, "", job.Errorf(job.CodeNotFound, "no user %q", userID)
	}
	if err != nil {
		return APIKey{}, "", fmt.Errorf("issue key: %w", err)
	}
	return k, secret, nil
}

// RevokeKey revokes a key, audited as actor's doing. Edges stop taking it
// as their key caches expire. Revoking a revoked key changes nothing. An
// admin's last live key is refused: without it nobody may be left to sign
// in to the dashboard or the admin API (rotate it, or issue another first).
func (s *Store) RevokeKey(ctx context.Context, actor, keyID string) (APIKey, error) {
	var k APIKey
	err := s.inTx(ctx, "revoke key", func(tx sqldb.Tx) error {
		if err := refuseLastAdminKey(ctx, tx, keyID); err != nil {
			return err
		}
		var err error
		k, _, err = revokeKey(ctx, tx, keyID)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "revoke_key", k.Prefix, map[string]any{"user_id": k.UserID, "key_id": k.ID})
	})
	return k, err
}

// revokeKey revokes a key; live says whether it was live until now.
// refuseLastAdminKey fails with a conflict when keyID is the last live key
// of an admin. The owner's row is locked first, so two revocations of an
// admin's last two keys cannot both pass.
func refuseLastAdminKey(ctx context.Context, tx sqldb.Tx, keyID string) error {
	if _, err := uuid.Parse(keyID); err != nil {
		return job.Errorf(job.CodeNotFound, "no API key %q", keyID)
	}
	var name string
	var role Role
	err := tx.QueryRow(ctx, `SELECT u.name, u.role FROM users u JOIN api_keys k ON k.user_id = u.id
		WHERE k.id = $1 AND k.revoked_at IS NULL FOR UPDATE`, keyID).Scan(&name, &role)
	if errors.Is(err, sqldb.ErrNoRows) || (err == nil && role != RoleAdmin) {
		return nil // revoked already, unknown (revokeKey says so), or no admin's
	}
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", keyID, err)
	}
	var others int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE user_id = (SELECT user_id FROM api_keys WHERE id = $1)
		AND revoked_at IS NULL AND id <> $1`, keyID).Scan(&others); err != nil {
		return fmt.Errorf("revoke key %s: %w", keyID, err)
	}
	if others == 0 {
		return job.Errorf(job.CodeConflict, "this is the last live API key of the admin %s: issue another key first (or rotate this one)", name)
	}
	return nil
}

func revokeKey(ctx context.Context, tx sqldb.Tx, keyID string) (k APIKey, live bool, err error) {
	if _, err := uuid.Parse(keyID); err != nil {
		return APIKey{}, false, job.Errorf(job.CodeNotFound, "no API key %q", keyID)
	}
	var prior *time.Time
	err = tx.QueryRow(ctx, `SELECT revoked_at FROM api_keys WHERE id = $1 FOR UPDATE`, keyID).Scan(&prior)
	if err == nil {
		err = tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
			RETURNING id::text, user_id::text, name, prefix, created_at, revoked_at`, keyID).
			Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.CreatedAt, &k.RevokedAt)
	}
	if errors.Is(err, sqldb.ErrNoRows) {
		return APIKey{}, false, job.Errorf(job.CodeNotFound, "no API key %q", keyID)
	}
	if err != nil {
		return APIKey{}, false, fmt.Errorf("revoke key %s: %w", keyID, err)
	}
	return k, prior == nil, nil
}

// RotateKey revokes a live key and issues its successor with the same name
// and owner in one transaction, audited as actor's doing.
func (s *Store) RotateKey(ctx context.Context, actor, keyID string) (APIKey, string, error) {
	var k APIKey
	var secret string
	err := s.inTx(ctx, "rotate key", func(tx sqldb.Tx) error {
		old, live, err := revokeKey(ctx, tx, keyID)
		if err != nil {
			return err
		}
		if !live {
			return job.Errorf(job.CodeConflict, "API key %s was revoked already: issue a new one instead", old.Prefix)
		}
		if k, secret, err = issueKey(ctx, tx, old.UserID, old.Name); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "rotate_key", old.Prefix, map[string]any{"user_id": old.UserID, "old_key_id": old.ID, "new_key_id": k.ID})
	})
	return k, secret, err
}

// ListPlans lists every plan by name.
func (s *Store) ListPlans(ctx context.Context) ([]Plan, error) {
	rows, err := s.db.Query(ctx, `SELECT `+planColumns+` FROM plans p ORDER BY p.name`)
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (Plan, error) {
		var p Plan
		err := r.Scan(planDest(&p)...)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	return out, nil
}

// Audit writes one audit-log entry outside any other change.
func (s *Store) Audit(ctx context.Context, actor, action, target string, detail map[string]any) error {
	return s.inTx(ctx, "audit", func(tx sqldb.Tx) error { return audit(ctx, tx, actor, action, target, detail) })
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	At                    time.Time
	Actor, Action, Target string
	Detail                []byte // JSON
}

// ListAudit returns the newest entries before `before` (zero: now).
func (s *Store) ListAudit(ctx context.Context, before time.Time, limit int) ([]AuditEntry, error) {
	if before.IsZero() {
		before = time.Now().Add(time.Hour)
	}
	rows, err := s.db.Query(ctx, `SELECT at, actor, action, target, detail::text FROM audit_log WHERE at < $1 ORDER BY at DESC LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (AuditEntry, error) {
		var e AuditEntry
		var d string
		err := r.Scan(&e.At, &e.Actor, &e.Action, &e.Target, &d)
		e.Detail = []byte(d)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}

// JobFilter narrows a job search; zero fields match everything.
type JobFilter struct {
	UserID        string
	Status        job.Status
	URLContains   string
	ErrorCode     string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	Limit         int // default 50
}

// SearchJobs finds jobs of any user, newest first (chunks excluded).
func (s *Store) SearchJobs(ctx context.Context, f JobFilter) ([]job.Job, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	if f.CreatedBefore.IsZero() {
		f.CreatedBefore = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if f.UserID != "" {
		if _, err := uuid.Parse(f.UserID); err != nil {
			return nil, job.Errorf(job.CodeInvalidArgument, "user %q is not a user id", f.UserID)
		}
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, job.Errorf(job.CodeInvalidArgument, "unknown status %q", f.Status)
	}
	rows, err := s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE parent_id IS NULL
		AND ($1 = '' OR user_id::text = $1) AND ($2 = '' OR status = $2) AND ($3 = '' OR strpos(url, $3) > 0)
		AND ($4 = '' OR error_code = $4) AND created_at >= $5 AND created_at < $6
		ORDER BY created_at DESC, id DESC LIMIT $7`,
		f.UserID, string(f.Status), f.URLContains, f.ErrorCode, f.CreatedAfter, f.CreatedBefore, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("search jobs: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (job.Job, error) { return scanJob(r) })
	if err != nil {
		return nil, fmt.Errorf("search jobs: %w", err)
	}
	return out, nil
}

// RetryJob queues a failed job again with fresh attempts, audited as actor's
// doing. Its earlier attempts stay in its history. A job that failed for a
// cause in its media (errcode.RetryHelps) is refused with conflict: every
// attempt would meet it again.
func (s *Store) RetryJob(ctx context.Context, actor, id string) (job.Job, error) {
	if _, err := uuid.Parse(id); err != nil {
		return job.Job{}, job.Errorf(job.CodeNotFound, "no job %s", id)
	}
	var j job.Job
	err := s.changeTx(ctx, "retry job", func(tx sqldb.Tx, cs *changes) error {
		if err := retryHelps(ctx, tx, id); err != nil {
			return err
		}
		// A long job starts over whole: its old chunks (and their segments)
		// go, and the download stage cuts the audio again.
		if _, err := tx.Exec(ctx, `DELETE FROM jobs WHERE parent_id = $1 AND EXISTS (SELECT 1 FROM jobs p WHERE p.id = $1 AND p.status = 'failed')`, id); err != nil {
			return fmt.Errorf("retry job %s: %w", id, err)
		}
		var err error
		j, err = scanJob(tx.QueryRow(ctx, `
			UPDATE jobs SET status = $2, attempt = 0, run_after = now(), error_code = '', error_message = '', progress = 0, chunks = 0,
				finished_at = NULL, lease_owner = '', lease_expires_at = NULL, cancel_requested = false, updated_at = now()
			WHERE id = $1 AND status = ANY($3) AND parent_id IS NULL
			RETURNING `+jobColumns, id, string(job.StatusQueued), froms(job.StatusQueued, job.StatusFailed)))
		if errors.Is(err, sqldb.ErrNoRows) {
			cur, gerr := s.GetJob(ctx, "", id)
			if gerr != nil {
				return gerr
			}
			return job.Errorf(job.CodeConflict, "job %s is %s: only a failed job can be retried", id, cur.Status)
		}
		if err != nil {
			return fmt.Errorf("retry job %s: %w", id, err)
		}
		cs.add(id, job.StatusFailed, job.StatusQueued)
		return audit(ctx, tx, actor, "retry_job", id, map[string]any{"user_id": j.UserID})
	})
	return j, err
}

// retryHelps refuses to retry failed job id when its failure is its media's
// own; any other job is left to RetryJob's update (not failed: conflict).
// The row is locked, so the code it checked is the one the update clears.
func retryHelps(ctx context.Context, tx sqldb.Tx, id string) error {
	var code string
	err := tx.QueryRow(ctx, `SELECT error_code FROM jobs WHERE id = $1 AND status = $2 AND parent_id IS NULL FOR UPDATE`,
		id, string(job.StatusFailed)).Scan(&code)
	switch {
	case errors.Is(err, sqldb.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("retry job %s: %w", id, err)
	case !errcode.RetryHelps(code):
		return job.Errorf(job.CodeConflict, "job %s failed with %s, a cause in its media: another attempt would fail the same way", id, code)
	}
	return nil
}

// Agent is a gpu-node as core knows it.
type Agent struct {
	NodeID              string
	Draining            bool // handed no new jobs
	Engines, Models     []string
	Version             string
	FirstSeen, LastSeen time.Time
	CurrentJobs         []string // jobs it holds a transcription lease on
	Slots               Slots    // as of its last poll
}

// Slots is how many jobs a gpu-node transcribes at once (Total, its
// --slots) and how many are in its engine (Busy).
type Slots struct{ Total, Busy int }

// maxAgentSlots bounds what a node may say it has: the fleet's sums stay
// far from overflowing whatever a node reports (gpu-nodes allow 64).
const maxAgentSlots = 1024

// TouchAgent records that a gpu-node called in, with what its engines can
// do and its slots (a zero Total: a node of the previous version, which
// runs one), and says whether an admin drained it.
func (s *Store) TouchAgent(ctx context.Context, nodeID string, caps []engines.Caps, version string, slots Slots) (draining bool, err error) {
	// The fleet view reads engines and models; creation checks read caps.
	names, models := []string{}, []string{}
	for _, c := range caps {
		names = append(names, c.Name)
		models = append(models, c.Models...)
	}
	if caps == nil {
		caps = []engines.Caps{}
	}
	b, err := json.Marshal(caps)
	if err != nil {
		return false, fmt.Errorf("touch agent %s: %w", nodeID, err)
	}
	total := min(max(slots.Total, 1), maxAgentSlots)
	busy := min(max(slots.Busy, 0), total)
	err = s.db.QueryRow(ctx, `INSERT INTO agents (node_id, engines, models, version, capabilities, slots, slots_busy) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (node_id) DO UPDATE SET engines = EXCLUDED.engines, models = EXCLUDED.models, version = EXCLUDED.version,
			capabilities = EXCLUDED.capabilities, slots = EXCLUDED.slots, slots_busy = EXCLUDED.slots_busy, last_seen = now()
		RETURNING draining`, nodeID, names, models, version, b, total, busy).Scan(&draining)
	if err != nil {
		return false, fmt.Errorf("touch agent %s: %w", nodeID, err)
	}
	return draining, nil
}

// Offers lists what the engines of the gpu-nodes seen within the last window
// can do: what a job may ask for. Nodes silent for longer count as gone.
func (s *Store) Offers(ctx context.Context, window time.Duration) ([]engines.Caps, error) {
	rows, err := s.db.Query(ctx, `SELECT capabilities FROM agents
		WHERE last_seen > now() - $1::bigint * interval '1 millisecond'`, window.Milliseconds())
	perNode, err := sqldb.Collect(rows, err, func(r sqldb.Row) ([]engines.Caps, error) {
		var b []byte
		var caps []engines.Caps
		if err := r.Scan(&b); err != nil {
			return nil, err
		}
		return caps, json.Unmarshal(b, &caps)
	})
	if err != nil {
		return nil, fmt.Errorf("list offers: %w", err)
	}
	return slices.Concat(perNode...), nil
}

// CountSlots adds up the slots of the gpu-nodes seen within the last window,
// and how many were busy at their last poll: core's slot metrics.
func (s *Store) CountSlots(ctx context.Context, window time.Duration) (Slots, error) {
	var n Slots
	err := s.db.QueryRow(ctx, `SELECT coalesce(sum(slots), 0)::int, coalesce(sum(slots_busy), 0)::int FROM agents
		WHERE last_seen > now() - $1::bigint * interval '1 millisecond'`, window.Milliseconds()).Scan(&n.Total, &n.Busy)
	if err != nil {
		return n, fmt.Errorf("count slots: %w", err)
	}
	return n, nil
}

// DrainAgent stops handing the gpu-node new jobs (draining) or hands it
// jobs again, audited as actor's doing.
func (s *Store) DrainAgent(ctx context.Context, actor, nodeID string, draining bool, detail map[string]any) error {
	action := "drain_agent"
	if !draining {
		action = "undrain_agent"
	}
	return s.inTx(ctx, action, func(tx sqldb.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE agents SET draining = $2 WHERE node_id = $1`, nodeID, draining)
		if err != nil {
			return fmt.Errorf("drain agent %s: %w", nodeID, err)
		}
		if tag.RowsAffected() == 0 {
			return job.Errorf(job.CodeNotFound, "no gpu-node %q has called in", nodeID)
		}
		return audit(ctx, tx, actor, action, nodeID, detail)
	})
}

// SeenAgent refreshes a known agent's last-seen time (its heartbeats).
func (s *Store) SeenAgent(ctx context.Context, nodeID string) error {
	if _, err := s.db.Exec(ctx, `UPDATE agents SET last_seen = now() WHERE node_id = $1`, nodeID); err != nil {
		return fmt.Errorf("agent %s seen: %w", nodeID, err)
	}
	return nil
}

// ListAgents lists every agent, most recently seen first, with the jobs it
// holds now.
func (s *Store) ListAgents(ctx context.Context) ([]Agent, error) {
	rows, err := s.db.Query(ctx, `SELECT a.node_id, a.draining, a.engines, a.models, a.version, a.first_seen, a.last_seen, a.slots, a.slots_busy,
		ARRAY(SELECT j.id::text FROM jobs j WHERE j.status = 'transcribing' AND j.lease_owner = a.node_id AND j.lease_expires_at > now() ORDER BY j.transcribing_at)
		FROM agents a ORDER BY a.last_seen DESC`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	out, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (Agent, error) {
		var a Agent
		err := r.Scan(&a.NodeID, &a.Draining, &a.Engines, &a.Models, &a.Version, &a.FirstSeen, &a.LastSeen, &a.Slots.Total, &a.Slots.Busy, &a.CurrentJobs)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// Overview is the state of the whole service.
type Overview struct {
	ByStatus map[job.Status]int
	// Over the last hour and day: jobs finished, and how many of them failed.
	FinishedHour, FailedHour, FinishedDay, FailedDay int
}

// GetOverview counts jobs per state and recent outcomes.
func (s *Store) GetOverview(ctx context.Context) (Overview, error) {
	var o Overview
	var err error
	if o.ByStatus, err = s.countByStatus(ctx, `SELECT status, count(*) FROM jobs WHERE parent_id IS NULL GROUP BY status`); err != nil {
		return o, fmt.Errorf("overview: %w", err)
	}
	err = s.db.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE finished_at > now() - interval '1 hour')::int,
			count(*) FILTER (WHERE finished_at > now() - interval '1 hour' AND status = 'failed')::int,
			count(*)::int, count(*) FILTER (WHERE status = 'failed')::int
		FROM jobs WHERE parent_id IS NULL AND finished_at > now() - interval '1 day'`).
		Scan(&o.FinishedHour, &o.FailedHour, &o.FinishedDay, &o.FailedDay)
	if err != nil {
		return o, fmt.Errorf("overview: %w", err)
	}
	return o, nil
}

// AdminSession is a signed-in dashboard user.
type AdminSession struct {
	UserID, Name, CSRF string
}

// SignIn opens a dashboard session for the admin owning key, for ttl. It
// returns the session id for the cookie (only its hash is stored) and the
// session. Keys of users who are not admins are refused like unknown ones.
func (s *Store) SignIn(ctx context.Context, key string, ttl time.Duration) (string, AdminSession, error) {
	sum := sha256.Sum256([]byte(key))
	var userID, keyID, name string
	err := s.db.QueryRow(ctx, `SELECT u.id::text, k.id::text, u.name FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.hash = $1 AND k.revoked_at IS NULL AND u.role = 'admin'`, sum[:]).Scan(&userID, &keyID, &name)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", AdminSession{}, job.Errorf(job.CodeUnauthorized, "that is not an admin's API key")
	}
	if err != nil {
		return "", AdminSession{}, fmt.Errorf("sign in: %w", err)
	}
	id, err := newKey()
	if err != nil {
		return "", AdminSession{}, err
	}
	csrf, err := newKey()
	if err != nil {
		return "", AdminSession{}, err
	}
	idSum := sha256.Sum256([]byte(id))
	if _, err := s.db.Exec(ctx, `DELETE FROM admin_sessions WHERE expires_at < now()`); err != nil {
		return "", AdminSession{}, fmt.Errorf("sign in: %w", err)
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO admin_sessions (id_hash, user_id, key_id, csrf, expires_at) VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 millisecond')`,
		idSum[:], userID, keyID, csrf, ms(ttl)); err != nil {
		return "", AdminSession{}, fmt.Errorf("sign in: %w", err)
	}
	return id, AdminSession{UserID: userID, Name: name, CSRF: csrf}, nil
}

// Session returns the live session with this id. A session ends when it
// expires, when its key is revoked, or when its user stops being an admin.
func (s *Store) Session(ctx context.Context, id string) (AdminSession, error) {
	sum := sha256.Sum256([]byte(id))
	var a AdminSession
	err := s.db.QueryRow(ctx, `SELECT u.id::text, u.name, s.csrf FROM admin_sessions s
		JOIN users u ON u.id = s.user_id JOIN api_keys k ON k.id = s.key_id
		WHERE s.id_hash = $1 AND s.expires_at > now() AND k.revoked_at IS NULL AND u.role = 'admin'`, sum[:]).Scan(&a.UserID, &a.Name, &a.CSRF)
	if errors.Is(err, sqldb.ErrNoRows) {
		return AdminSession{}, job.Errorf(job.CodeUnauthorized, "not signed in")
	}
	if err != nil {
		return AdminSession{}, fmt.Errorf("session: %w", err)
	}
	return a, nil
}

// SignOut ends the session with this id.
func (s *Store) SignOut(ctx context.Context, id string) error {
	sum := sha256.Sum256([]byte(id))
	if _, err := s.db.Exec(ctx, `DELETE FROM admin_sessions WHERE id_hash = $1`, sum[:]); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}
