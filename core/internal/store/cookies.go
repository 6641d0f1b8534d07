package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// MaxCookieFileBytes caps a cookie file. A browser's export of YouTube's
// cookies is a few KB; a whole profile's can reach some hundreds. The cap
// keeps an AddCookieFile call well inside core's 1 MiB message limit.
const MaxCookieFileBytes = 512 << 10

// CookieFile is an admin's cookies file for yt-dlp, without its content:
// the content is a signed-in session, read only by the download stage
// (CookieFileContent).
type CookieFile struct {
	ID              string
	Name            string
	Enabled         bool
	Size            int // bytes of content
	CreatedAt       time.Time
	LastSuccessAt   *time.Time // a download through it succeeded
	LastFailureAt   *time.Time // YouTube refused a download through it ...
	LastFailureCode string     // ... with this job code (youtube_bot_check, youtube_rate_limited)
}

const cookieFileColumns = `id::text, name, enabled, length(content), created_at, last_success_at, last_failure_at, last_failure_code`

func scanCookieFile(r sqldb.Row) (c CookieFile, err error) {
	return c, r.Scan(&c.ID, &c.Name, &c.Enabled, &c.Size, &c.CreatedAt, &c.LastSuccessAt, &c.LastFailureAt, &c.LastFailureCode)
}

// AddCookieFile stores content (checked by the caller: the admin API runs
// outbound.CheckCookies) under name, enabled, and audits it under actor —
// by name and size, never content.
func (s *Store) AddCookieFile(ctx context.Context, actor, name string, content []byte) (CookieFile, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 100 || strings.ContainsFunc(name, unicode.IsControl) {
		return CookieFile{}, job.Errorf(job.CodeInvalidArgument, "a cookie file needs a name of 1 to 100 printable characters")
	}
	if len(content) > MaxCookieFileBytes {
		return CookieFile{}, job.Errorf(errcode.RequestTooLarge, "a cookie file is at most %d KiB; this one is %d KiB", MaxCookieFileBytes>>10, len(content)>>10)
	}
	if len(content) == 0 {
		return CookieFile{}, job.Errorf(job.CodeInvalidArgument, "the cookie file is empty")
	}
	var c CookieFile
	err := s.inTx(ctx, "add cookie file", func(tx sqldb.Tx) error {
		var err error
		c, err = scanCookieFile(tx.QueryRow(ctx, `INSERT INTO cookie_files (name, content) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING
			RETURNING `+cookieFileColumns, name, content))
		if errors.Is(err, sqldb.ErrNoRows) {
			return job.Errorf(job.CodeConflict, "a cookie file named %q exists already", name)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "add_cookie_file", name, map[string]any{"cookie_file_id": c.ID, "bytes": c.Size})
	})
	return c, err
}

// ListCookieFiles returns every cookie file, enabled or not, by name.
func (s *Store) ListCookieFiles(ctx context.Context) ([]CookieFile, error) {
	rows, err := s.db.Query(ctx, `SELECT `+cookieFileColumns+` FROM cookie_files ORDER BY name`)
	out, err := sqldb.Collect(rows, err, scanCookieFile)
	if err != nil {
		return nil, fmt.Errorf("list cookie files: %w", err)
	}
	return out, nil
}

// CookieFileContent is the file's content, for the download stage alone.
func (s *Store) CookieFileContent(ctx context.Context, id string) ([]byte, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, job.Errorf(job.CodeNotFound, "no cookie file %q", id)
	}
	var b []byte
	err := s.db.QueryRow(ctx, `SELECT content FROM cookie_files WHERE id = $1`, id).Scan(&b)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, job.Errorf(job.CodeNotFound, "no cookie file %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read cookie file %s: %w", id, err)
	}
	return b, nil
}

// SetCookieFileEnabled enables or disables a cookie file, audited under
// actor. The pools of every replica see it at their next refresh.
func (s *Store) SetCookieFileEnabled(ctx context.Context, actor, id string, enabled bool) (CookieFile, error) {
	if _, err := uuid.Parse(id); err != nil {
		return CookieFile{}, job.Errorf(job.CodeNotFound, "no cookie file %q", id)
	}
	var c CookieFile
	err := s.inTx(ctx, "set cookie file", func(tx sqldb.Tx) error {
		var err error
		c, err = scanCookieFile(tx.QueryRow(ctx, `UPDATE cookie_files SET enabled = $2 WHERE id = $1 RETURNING `+cookieFileColumns, id, enabled))
		if errors.Is(err, sqldb.ErrNoRows) {
			return job.Errorf(job.CodeNotFound, "no cookie file %q", id)
		}
		if err != nil {
			return err
		}
		action := "disable_cookie_file"
		if enabled {
			action = "enable_cookie_file"
		}
		return audit(ctx, tx, actor, action, c.Name, map[string]any{"cookie_file_id": c.ID})
	})
	return c, err
}

// DeleteCookieFile deletes a cookie file, audited under actor.
func (s *Store) DeleteCookieFile(ctx context.Context, actor, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return job.Errorf(job.CodeNotFound, "no cookie file %q", id)
	}
	return s.inTx(ctx, "delete cookie file", func(tx sqldb.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `DELETE FROM cookie_files WHERE id = $1 RETURNING name`, id).Scan(&name)
		if errors.Is(err, sqldb.ErrNoRows) {
			return job.Errorf(job.CodeNotFound, "no cookie file %q", id)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "delete_cookie_file", name, map[string]any{"cookie_file_id": id})
	})
}

// RecordCookieOutcome writes what a download through the file met at at:
// success when code is "", else the refusal's job code. A file deleted
// meanwhile is no error: there is nothing left to record on.
func (s *Store) RecordCookieOutcome(ctx context.Context, id string, at time.Time, code string) error {
	var err error
	if code == "" {
		_, err = s.db.Exec(ctx, `UPDATE cookie_files SET last_success_at = $2 WHERE id = $1`, id, at)
	} else {
		_, err = s.db.Exec(ctx, `UPDATE cookie_files SET last_failure_at = $2, last_failure_code = $3 WHERE id = $1`, id, at, code)
	}
	if err != nil {
		return fmt.Errorf("record cookie file outcome %s: %w", id, err)
	}
	return nil
}
