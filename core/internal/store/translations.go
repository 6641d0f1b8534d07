package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
)

// Translation states.
const (
	TranslationQueued    = "queued"
	TranslationRunning   = "running"
	TranslationSucceeded = "succeeded"
	TranslationFailed    = "failed"
)

// Translation is a job's transcript translated into one language, or the
// request for it (see core/internal/translate).
type Translation struct {
	ID, JobID, UserID string
	Language          string
	State             string
	Translator        string // the translator's name, once run
	Characters        int64  // the transcript's characters: what it costs
	Cached            bool   // copied from an earlier translation of the same transcript: free
	Attempt           int
	ErrorCode         string
	ErrorMessage      string
	CreatedAt         time.Time
	FinishedAt        time.Time
}

const translationColumns = `t.id::text, t.job_id::text, t.user_id::text, t.language, t.state, t.translator, t.characters, t.cached, t.attempt,
	t.error_code, t.error_message, t.created_at, t.finished_at`

// unqualified are columns without their table's alias: SQLite's INSERT …
// RETURNING takes no alias.
func unqualified(cols string) string { return strings.ReplaceAll(cols, "t.", "") }

func scanTranslation(r sqldb.Row) (Translation, error) {
	var (
		t        Translation
		finished *time.Time
	)
	err := r.Scan(&t.ID, &t.JobID, &t.UserID, &t.Language, &t.State, &t.Translator, &t.Characters, &t.Cached, &t.Attempt,
		&t.ErrorCode, &t.ErrorMessage, &t.CreatedAt, &finished)
	if finished != nil {
		t.FinishedAt = *finished
	}
	return t, err
}

// TranslationUsage is where a user stands against the monthly translation
// quota (UTC months).
type TranslationUsage struct {
	Limit   int64 // characters a month; Unlimited
	Used    int64 // characters of this month's translations (the ledger)
	Pending int64 // characters of queued and running translations (0 for those whose transcript is not done)
	// ResetsAt is when the month ends.
	ResetsAt time.Time
}

// Remaining is what the month still allows, never below 0; -1 for no limit.
func (u TranslationUsage) Remaining() int64 {
	if u.Limit == Unlimited {
		return -1
	}
	return max(0, u.Limit-u.Used-u.Pending)
}

const translationUsageQuery = `
	SELECT COALESCE(p.monthly_translation_chars, 0),
		(SELECT COALESCE(sum(characters), 0)::bigint FROM translation_ledger l WHERE l.user_id = u.id AND l.month = month_start(now())),
		(SELECT COALESCE(sum(characters), 0)::bigint FROM translations t WHERE t.user_id = u.id AND t.state IN ('queued', 'running')),
		next_month(now())
	FROM users u JOIN plans p ON p.name = u.plan WHERE u.id = $1`

func scanTranslationUsage(r sqldb.Row) (TranslationUsage, error) {
	var u TranslationUsage
	err := r.Scan(&u.Limit, &u.Used, &u.Pending, &u.ResetsAt)
	return u, err
}

// GetTranslationUsage returns where the user stands this month.
func (s *Store) GetTranslationUsage(ctx context.Context, userID string) (TranslationUsage, error) {
	u, err := scanTranslationUsage(s.db.QueryRow(ctx, translationUsageQuery, userID))
	if err != nil {
		return TranslationUsage{}, fmt.Errorf("translation usage of %s: %w", userID, err)
	}
	return u, nil
}

// Check refuses chars more characters this month (0: a translation whose
// size is not known yet, refused only when the month is used up), with the
// numbers. exceptPending are characters already counted as pending for
// this very translation, not to be counted twice.
func (u TranslationUsage) Check(chars, exceptPending int64) error {
	if u.Limit == Unlimited {
		return nil
	}
	left := u.Limit - u.Used - (u.Pending - exceptPending)
	if left <= 0 || chars > left {
		return job.Errorf(job.CodeQuotaExceeded, "this translation needs %d characters; this month's %d translation characters have %d left (%d used, %d in queued translations); the quota resets at %s",
			chars, u.Limit, max(0, left), u.Used, u.Pending-exceptPending, u.ResetsAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// RequestTranslation queues the translation of a job of user's into
// language, or returns the one asked for before (created false). A failed
// translation asked for again is queued again. chars is what it will cost,
// if known (the job's transcript is done), checked against the user's
// monthly translation quota in the same transaction, under a lock on the
// user's row, so two requests cannot both take the last characters.
func (s *Store) RequestTranslation(ctx context.Context, userID, jobID, language string, chars int64) (Translation, bool, error) {
	if _, err := uuid.Parse(jobID); err != nil {
		return Translation{}, false, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", jobID)}
	}
	var (
		t       Translation
		created bool
	)
	err := s.inTx(ctx, "request translation", func(tx sqldb.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, `SELECT user_id::text FROM jobs WHERE id = $1 AND parent_id IS NULL`, jobID).Scan(&owner)
		if errors.Is(err, sqldb.ErrNoRows) || (err == nil && owner != userID) {
			return &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", jobID)}
		}
		if err != nil {
			return fmt.Errorf("request translation: %w", err)
		}
		t, err = scanTranslation(tx.QueryRow(ctx, `SELECT `+translationColumns+` FROM translations t WHERE t.job_id = $1 AND t.language = $2`, jobID, language))
		switch {
		case err == nil && t.State != TranslationFailed:
			return nil
		case err != nil && !errors.Is(err, sqldb.ErrNoRows):
			return fmt.Errorf("request translation: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
			return fmt.Errorf("request translation: %w", err)
		}
		u, err := scanTranslationUsage(tx.QueryRow(ctx, translationUsageQuery, userID))
		if err != nil {
			return fmt.Errorf("translation quota of %s: %w", userID, err)
		}
		if err := u.Check(chars, 0); err != nil {
			return err
		}
		t, err = scanTranslation(tx.QueryRow(ctx, `
			INSERT INTO translations (job_id, user_id, language, characters) VALUES ($1, $2, $3, $4)
			ON CONFLICT (job_id, language) DO UPDATE SET state = 'queued', attempt = 0, error_code = '', error_message = '',
				characters = EXCLUDED.characters, translator = '', cached = false, created_at = now(), finished_at = NULL
			RETURNING `+unqualified(translationColumns), jobID, userID, language, chars))
		if err != nil {
			return fmt.Errorf("request translation: %w", err)
		}
		created = true
		return nil
	})
	return t, created, err
}

// ListTranslations returns a job's translations, by language.
func (s *Store) ListTranslations(ctx context.Context, userID, jobID string) ([]Translation, error) {
	if _, err := s.GetJob(ctx, userID, jobID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+translationColumns+` FROM translations t WHERE t.job_id = $1 ORDER BY t.language`, jobID)
	out, err := sqldb.Collect(rows, err, scanTranslation)
	if err != nil {
		return nil, fmt.Errorf("list translations of %s: %w", jobID, err)
	}
	return out, nil
}

// GetTranslation returns a job's translation into language and, once it
// succeeded, its texts (one per segment, in order).
func (s *Store) GetTranslation(ctx context.Context, userID, jobID, language string) (Translation, []string, error) {
	if _, err := s.GetJob(ctx, userID, jobID); err != nil {
		return Translation{}, nil, err
	}
	var (
		raw *string
		t   Translation
	)
	var finished *time.Time
	err := s.db.QueryRow(ctx, `SELECT `+translationColumns+`, t.texts FROM translations t WHERE t.job_id = $1 AND t.language = $2`, jobID, language).
		Scan(append(translationDest(&t), &finished, &raw)...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return Translation{}, nil, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("job %s has no translation into %s: ask for one with POST /v1/jobs/%s/translations", jobID, language, jobID)}
	}
	if err != nil {
		return Translation{}, nil, fmt.Errorf("get translation of %s: %w", jobID, err)
	}
	if finished != nil {
		t.FinishedAt = *finished
	}
	var texts []string
	if raw != nil {
		if err := json.Unmarshal([]byte(*raw), &texts); err != nil {
			return Translation{}, nil, fmt.Errorf("get translation of %s: %w", jobID, err)
		}
	}
	return t, texts, nil
}

// translationDest are scan targets of translationColumns but the last
// (finished_at, which needs a pointer of its own).
func translationDest(t *Translation) []any {
	return []any{&t.ID, &t.JobID, &t.UserID, &t.Language, &t.State, &t.Translator, &t.Characters, &t.Cached, &t.Attempt,
		&t.ErrorCode, &t.ErrorMessage, &t.CreatedAt}
}

// ClaimTranslation takes the oldest translation that is queued, or running
// under a lease that expired (its core died), whose job has ended, for
// owner until lease from now. ok is false when there is none.
func (s *Store) ClaimTranslation(ctx context.Context, owner string, lease time.Duration) (Translation, bool, error) {
	t, err := scanTranslation(s.db.QueryRow(ctx, `
		WITH due AS (
			SELECT id FROM translations
			WHERE (state = 'queued' OR (state = 'running' AND lease_expires_at <= now()))
				AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = translations.job_id AND j.status IN ('succeeded', 'failed', 'cancelled'))
			ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
		)
		UPDATE translations AS t SET state = 'running', attempt = t.attempt + 1, lease_owner = $1,
			lease_expires_at = now() + $2::bigint * interval '1 millisecond'
		FROM due WHERE t.id = due.id
		RETURNING `+translationColumns, owner, ms(lease)))
	if errors.Is(err, sqldb.ErrNoRows) {
		return Translation{}, false, nil
	}
	if err != nil {
		return Translation{}, false, fmt.Errorf("claim translation: %w", err)
	}
	return t, true, nil
}

// ExtendTranslation renews owner's lease on a running translation; a lease
// another took (or that ended) is job.ErrLeaseLost.
func (s *Store) ExtendTranslation(ctx context.Context, id, owner string, lease time.Duration) error {
	tag, err := s.db.Exec(ctx, `UPDATE translations SET lease_expires_at = now() + $3::bigint * interval '1 millisecond'
		WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner, ms(lease))
	if err != nil {
		return fmt.Errorf("extend translation %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("extend translation %s: %w", id, job.ErrLeaseLost)
	}
	return nil
}

// TranslationResult is a finished translation.
type TranslationResult struct {
	Translator string
	SourceHash string // the transcript's texts and language: the cache key with the language and translator
	Texts      []string
	Characters int64
	Cached     bool // copied from an earlier translation: not charged
}

// CompleteTranslation stores owner's finished translation and, unless it
// came from the cache, charges its characters to the user's month.
func (s *Store) CompleteTranslation(ctx context.Context, id, owner string, r TranslationResult) error {
	texts, err := json.Marshal(r.Texts)
	if err != nil {
		return fmt.Errorf("complete translation %s: %w", id, err)
	}
	return s.inTx(ctx, "complete translation "+id, func(tx sqldb.Tx) error {
		var user string
		err := tx.QueryRow(ctx, `UPDATE translations SET state = 'succeeded', translator = $3, source_hash = $4, texts = $5, characters = $6, cached = $7,
				finished_at = now(), lease_owner = '', lease_expires_at = NULL, error_code = '', error_message = ''
			WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING user_id::text`,
			id, owner, r.Translator, r.SourceHash, string(texts), r.Characters, r.Cached).Scan(&user)
		if errors.Is(err, sqldb.ErrNoRows) {
			return fmt.Errorf("complete translation %s: %w", id, job.ErrLeaseLost)
		}
		if err != nil {
			return fmt.Errorf("complete translation %s: %w", id, err)
		}
		if r.Cached {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO translation_ledger (translation_id, user_id, month, characters) VALUES ($1, $2, month_start(now()), $3)
			ON CONFLICT (translation_id) DO UPDATE SET characters = translation_ledger.characters + EXCLUDED.characters`, id, user, r.Characters); err != nil {
			return fmt.Errorf("charge translation %s: %w", id, err)
		}
		return nil
	})
}

// FailTranslation ends owner's translation with a coded error.
func (s *Store) FailTranslation(ctx context.Context, id, owner string, e *job.Error) error {
	tag, err := s.db.Exec(ctx, `UPDATE translations SET state = 'failed', error_code = $3, error_message = $4, finished_at = now(),
			lease_owner = '', lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, id, owner, e.Code, e.Message)
	if err != nil {
		return fmt.Errorf("fail translation %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("fail translation %s: %w", id, job.ErrLeaseLost)
	}
	return nil
}

// CachedTranslation returns the texts of a succeeded translation of the same
// transcript (by its hash) into language by translator, if there is one.
func (s *Store) CachedTranslation(ctx context.Context, sourceHash, language, translator string) ([]string, bool, error) {
	var raw string
	err := s.db.QueryRow(ctx, `SELECT texts FROM translations WHERE source_hash = $1 AND language = $2 AND translator = $3 AND state = 'succeeded'
		AND texts IS NOT NULL ORDER BY finished_at LIMIT 1`, sourceHash, language, translator).Scan(&raw)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cached translation: %w", err)
	}
	var texts []string
	if err := json.Unmarshal([]byte(raw), &texts); err != nil {
		return nil, false, fmt.Errorf("cached translation: %w", err)
	}
	return texts, true, nil
}
