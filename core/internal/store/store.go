// Package store is the only place SQL about users, API keys, jobs, segments and
// attempts lives. Every status change it makes is one the job package's state
// machine allows: the allowed source states are taken from job.CanTransition,
// never written out here.
//
// Every job change it makes — a transition, or progress, segments or a chunk
// done within a state — is reported as a Change to the observer set with
// OnChange, after its transaction commits (core announces them on the
// dispatch bus), so callers never pair a transition with its wake-up.
//
// Its SQL is PostgreSQL's; on the single box sqldb translates it for SQLite.
// Every exported method runs on both databases in the tests
// (TestEveryStoreMethodRunsOnBothDrivers fails for one that does not), since
// SQLite is what a default install runs.
package store

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"

	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/backoff"
)

// Store reads and writes core's state in PostgreSQL or SQLite.
type Store struct {
	db       sqldb.DB
	onChange func(context.Context, Change) // see OnChange; nil: nobody listens
	// backupFile is the file a backup and blob deletions lock as well (see
	// BackupLockFile); empty: the database's lock alone.
	backupFile string
	creations  *creations // fastCreation's group commit
}

// New returns a Store on a migrated database.
func New(db sqldb.DB, opts ...Option) *Store {
	s := &Store{db: db}
	s.creations = newCreations(s)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Dialect says which database the store runs on.
func (s *Store) Dialect() sqldb.Dialect { return s.db.Dialect() }

// Role is what a user may do.
type Role string

const (
	RoleAdmin Role = "admin"
	RoleUser  Role = "user"
)

// User is an account.
type User struct {
	ID        string
	Name      string
	Role      Role
	CreatedAt time.Time
	Plan      Plan // filled by Authenticate
}

// EnsureUser returns the user with this name, creating it with role if absent.
func (s *Store) EnsureUser(ctx context.Context, name string, role Role) (User, error) {
	var u User
	err := s.db.QueryRow(ctx, `
		INSERT INTO users (name, role) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
		RETURNING id, name, role, created_at`, name, string(role)).Scan(&u.ID, &u.Name, &u.Role, &u.CreatedAt)
	if err != nil {
		return User{}, fmt.Errorf("ensure user %s: %w", name, err)
	}
	return u, nil
}

const keyAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// CreateAPIKey makes a new random key for the user and returns it; only its
// hash is stored, so this is the one time anybody sees it.
func (s *Store) CreateAPIKey(ctx context.Context, userID string) (string, error) {
	var key string
	err := s.inTx(ctx, "create key", func(tx sqldb.Tx) (err error) {
		_, key, err = issueKey(ctx, tx, userID, "")
		return err
	})
	return key, err
}

// newKey draws a key: "ytc_" and 32 letters and digits (190 bits).
func newKey() (string, error) {
	b := make([]byte, 32)
	for i := range b {
		n, err := crand.Int(crand.Reader, big.NewInt(int64(len(keyAlphabet))))
		if err != nil {
			return "", fmt.Errorf("make key: %w", err)
		}
		b[i] = keyAlphabet[n.Int64()]
	}
	return "ytc_" + string(b), nil
}

// AddAPIKey registers a caller-chosen key (the dev stack's key from the
// environment). Adding the same key to the same user again is a no-op.
func (s *Store) AddAPIKey(ctx context.Context, userID, key string) error {
	if len(key) < 16 {
		return job.Errorf(job.CodeInvalidArgument, "an API key must be at least 16 characters long")
	}
	sum := sha256.Sum256([]byte(key))
	tag, err := s.db.Exec(ctx, `
		INSERT INTO api_keys (user_id, prefix, hash) VALUES ($1, $2, $3)
		ON CONFLICT (hash) DO UPDATE SET revoked_at = NULL WHERE api_keys.user_id = EXCLUDED.user_id`,
		userID, key[:8], sum[:])
	if err != nil {
		return fmt.Errorf("add api key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return job.Errorf(job.CodeConflict, "that API key belongs to another user")
	}
	return nil
}

// Authenticate returns the user owning key. Unknown and revoked keys are
// refused alike, with code "unauthorized".
func (s *Store) Authenticate(ctx context.Context, key string) (User, error) {
	sum := sha256.Sum256([]byte(key))
	var u User
	err := s.db.QueryRow(ctx, `
		SELECT u.id, u.name, u.role, u.created_at, `+planColumns+`
		FROM api_keys k JOIN users u ON u.id = k.user_id JOIN plans p ON p.name = u.plan
		WHERE k.hash = $1 AND k.revoked_at IS NULL`, sum[:]).Scan(append([]any{&u.ID, &u.Name, &u.Role, &u.CreatedAt}, planDest(&u.Plan)...)...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return User{}, job.Errorf(job.CodeUnauthorized, "invalid API key")
	}
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	return u, nil
}

// NewJob is what CreateJob needs.
type NewJob struct {
	UserID, URL, CanonicalURL string
	SourceKind                job.SourceKind
	Source                    job.Source // "" is auto
	Language, Engine, Model   string
	Task, Prompt              string // "" is transcribe
	Speakers                  bool   // label who speaks
	MinSpeakers, MaxSpeakers  int    // 0: the engine decides
	Vocabulary                []string
	SilenceGuard              bool // the hallucination guards that run
	RepetitionGuard           bool
	WebhookURL                string // "" is the user's default, if any
	TraceParent               string // the creating request's span, for tracing
	MaxAttempts               int    // 0 means 3
	// IdempotencyKey, when set, makes the creation happen once per user and
	// key; Fingerprint identifies the request's parameters.
	IdempotencyKey string
	Fingerprint    []byte
}

const jobColumns = `id, user_id, status, url, canonical_url, source_kind, source, transcribed_from, coalesce(reused_from::text, ''), language, engine, model, task, prompt,
	coalesce(parent_id::text, ''), chunk_index, chunk_offset_ms, chunks, transcript_expired,
	detected_language, progress, media_title, media_uploader, media_duration_ms, audio_key, epoch, lease_owner, lease_expires_at,
	media_site, media_site_id, media_upload_date, media_thumbnail, media_webpage_url,
	attempt, max_attempts, cancel_requested, error_code, error_message,
	created_at, downloading_at, ready_at, transcribing_at, finished_at, updated_at, trace_parent,
	speakers, min_speakers, max_speakers, speaker_names,
	vocabulary, silence_guard, repetition_guard, silence_dropped, repetition_dropped, repetition_trimmed, revision`

func scanJob(row sqldb.Row) (job.Job, error) {
	var (
		j                                                 job.Job
		durMS                                             int64
		lease, downloading, ready, transcribing, finished *time.Time
		speakerNames, vocabulary                          []byte
	)
	err := row.Scan(&j.ID, &j.UserID, &j.Status, &j.URL, &j.CanonicalURL, &j.SourceKind, &j.Source, &j.TranscribedFrom, &j.ReusedFrom, &j.Language, &j.Engine, &j.Model, &j.Task, &j.Prompt,
		&j.ParentID, &j.ChunkIndex, &j.ChunkOffsetMS, &j.Chunks, &j.TranscriptExpired,
		&j.DetectedLanguage, &j.Progress, &j.MediaTitle, &j.MediaUploader, &durMS, &j.AudioKey, &j.Epoch, &j.LeaseOwner, &lease,
		&j.MediaSite, &j.MediaSiteID, &j.MediaUploadDate, &j.MediaThumbnail, &j.MediaWebpageURL,
		&j.Attempt, &j.MaxAttempts, &j.CancelRequested, &j.ErrorCode, &j.ErrorMessage,
		&j.CreatedAt, &downloading, &ready, &transcribing, &finished, &j.UpdatedAt, &j.TraceParent,
		&j.Speakers, &j.MinSpeakers, &j.MaxSpeakers, &speakerNames,
		&vocabulary, &j.Guards.Silence, &j.Guards.Repetition, &j.Guards.SilenceDropped, &j.Guards.RepetitionDropped, &j.Guards.RepetitionTrimmed, &j.Revision)
	if err != nil {
		return job.Job{}, err
	}
	if len(speakerNames) > 0 {
		if err := json.Unmarshal(speakerNames, &j.SpeakerNames); err != nil {
			return job.Job{}, fmt.Errorf("decode speaker names of job %s: %w", j.ID, err)
		}
		if len(j.SpeakerNames) == 0 {
			j.SpeakerNames = nil
		}
	}
	if len(vocabulary) > 0 {
		if err := json.Unmarshal(vocabulary, &j.Vocabulary); err != nil {
			return job.Job{}, fmt.Errorf("decode vocabulary of job %s: %w", j.ID, err)
		}
		if len(j.Vocabulary) == 0 {
			j.Vocabulary = nil
		}
	}
	j.MediaDuration = time.Duration(durMS) * time.Millisecond
	for _, p := range []struct {
		src *time.Time
		dst *time.Time
	}{{lease, &j.LeaseExpiresAt}, {downloading, &j.DownloadingAt}, {ready, &j.ReadyAt}, {transcribing, &j.TranscribingAt}, {finished, &j.FinishedAt}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	return j, nil
}

// froms returns the statuses, among candidates, from which a job may move to
// `to`. Asking for an illegal move is a programming error.
func froms(to job.Status, candidates ...job.Status) []string {
	out := make([]string, 0, len(candidates))
	for _, c := range candidates {
		if !job.CanTransition(c, to) {
			panic(fmt.Sprintf("store: illegal transition %s -> %s", c, to))
		}
		out = append(out, string(c))
	}
	return out
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// CreateJob inserts a queued job.
func (s *Store) CreateJob(ctx context.Context, n NewJob) (job.Job, error) {
	j, _, err := s.CreateJobOnce(ctx, n)
	return j, err
}

// CreateJobOnce creates a job, once per n.IdempotencyKey: a request repeating
// an earlier one's key and fingerprint gets the earlier job and replayed=true;
// the key with another fingerprint fails with idempotency_key_mismatch. The
// key is recorded with the job, atomically, so concurrent duplicates wait for
// the first and then replay it: exactly one job, whatever the timing.
func (s *Store) CreateJobOnce(ctx context.Context, n NewJob) (j job.Job, replayed bool, err error) {
	c := s.CreateJobsOnce(ctx, []NewJob{n})[0]
	return c.Job, c.Replayed, c.Err
}

// withDefaults is n with its zero fields given their defaults.
func (n NewJob) withDefaults() NewJob {
	if n.MaxAttempts <= 0 {
		n.MaxAttempts = 3
	}
	if n.Language == "" {
		n.Language = "auto"
	}
	if n.Source == "" {
		n.Source = job.SourceAuto
	}
	if n.Task == "" {
		n.Task = engines.Transcribe
	}
	return n
}

// createInTx is CreateJobOnce's transaction, for a creation fastCreation
// declined: it replays or refuses a key seen before, and counts a quota.
func (s *Store) createInTx(ctx context.Context, n NewJob) (j job.Job, replayed bool, err error) {
	err = s.inTx(ctx, "create job", func(tx sqldb.Tx) error {
		if n.IdempotencyKey != "" {
			// A concurrent insert of the same key makes this one wait for its
			// transaction; the SELECT after it, a new statement, then sees it.
			tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3)
				ON CONFLICT (user_id, key) DO NOTHING`, n.UserID, n.IdempotencyKey, n.Fingerprint)
			if err != nil {
				return fmt.Errorf("idempotency key: %w", err)
			}
			if tag.RowsAffected() == 0 {
				var prior []byte
				var priorJob string
				if err := tx.QueryRow(ctx, `SELECT fingerprint, job_id::text FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
					n.UserID, n.IdempotencyKey).Scan(&prior, &priorJob); err != nil {
					return fmt.Errorf("idempotency key: %w", err)
				}
				if !bytes.Equal(prior, n.Fingerprint) {
					return job.Errorf(job.CodeIdempotencyKey, "this Idempotency-Key was used with different parameters")
				}
				replayed = true
				j, err = scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, priorJob))
				return err
			}
		}
		if err := checkQuota(ctx, tx, n.UserID); err != nil {
			return err
		}
		j, err = scanJob(tx.QueryRow(ctx, `INSERT INTO jobs (`+newJobColumns+`) VALUES (`+newJobValues+`) RETURNING `+jobColumns,
			newJobArgs(uuid.NewString(), n)...))
		if err != nil || n.IdempotencyKey == "" {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE idempotency_keys SET job_id = $3 WHERE user_id = $1 AND key = $2`, n.UserID, n.IdempotencyKey, j.ID)
		return err
	})
	if err != nil {
		var je *job.Error
		if errors.As(err, &je) {
			return job.Job{}, false, err
		}
		return job.Job{}, false, fmt.Errorf("create job: %w", err)
	}
	if !replayed {
		s.report(ctx, Change{JobID: j.ID, To: job.StatusQueued})
	}
	return j, replayed, nil
}

// GetJob returns a job. With userID set, another user's job is not found.
func (s *Store) GetJob(ctx context.Context, userID, id string) (job.Job, error) {
	if _, err := uuid.Parse(id); err != nil {
		return job.Job{}, fmt.Errorf("get job %q: %w", id, job.ErrNotFound)
	}
	j, err := scanJob(s.db.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND ($2 = '' OR user_id::text = $2)`, id, userID))
	if errors.Is(err, sqldb.ErrNoRows) {
		return job.Job{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", id)}
	}
	if err != nil {
		return job.Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

type cursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"i"`
}

// ListJobs lists a user's jobs newest first. cursor is the next value of the
// previous page ("" for the first); next is "" on the last page.
func (s *Store) ListJobs(ctx context.Context, userID string, limit int, cur string) ([]job.Job, string, error) {
	after := cursor{CreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	if cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		if err == nil {
			err = json.Unmarshal(b, &after)
		}
		if _, perr := uuid.Parse(after.ID); err != nil || perr != nil {
			return nil, "", job.Errorf(job.CodeInvalidArgument, "the cursor is not one this API returned")
		}
	}
	rows, err := s.db.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE user_id = $1 AND parent_id IS NULL AND (created_at, id) < ($2, $3::uuid)
		ORDER BY created_at DESC, id DESC LIMIT $4`, userID, after.CreatedAt, after.ID, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	jobs, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (job.Job, error) { return scanJob(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	if len(jobs) <= limit {
		return jobs, "", nil
	}
	jobs = jobs[:limit]
	last := jobs[limit-1]
	b, _ := json.Marshal(cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	return jobs, base64.RawURLEncoding.EncodeToString(b), nil
}

// CancelJob cancels a job that has not finished. A job that a stage holds keeps
// its lease and is marked cancel_requested, so the holder hears of the cancel
// from its next lease call and stops. A finished job is returned unchanged.
func (s *Store) CancelJob(ctx context.Context, userID, id string) (job.Job, error) {
	j, err := s.GetJob(ctx, userID, id)
	if err != nil || j.Status.Terminal() {
		return j, err
	}
	ended := false
	err = s.changeTx(ctx, "cancel job "+id, func(tx sqldb.Tx, cs *changes) error {
		// Lock the row and read its status first: which state it leaves
		// decides whom the change wakes (a holder, or only watchers).
		var from job.Status
		if err := tx.QueryRow(ctx, `SELECT status FROM jobs WHERE id = $1 FOR UPDATE`, id).Scan(&from); err != nil {
			return fmt.Errorf("cancel job %s: %w", id, err)
		}
		if !job.CanTransition(from, job.StatusCancelled) {
			ended = true // it finished between the read and the lock
			return nil
		}
		var err error
		j, err = scanJob(tx.QueryRow(ctx, `
			UPDATE jobs SET status = $2, error_code = $3, error_message = 'cancelled by the user',
				cancel_requested = status IN ('downloading', 'transcribing'),
				lease_expires_at = CASE WHEN status IN ('downloading', 'transcribing') THEN lease_expires_at END,
				finished_at = now(), updated_at = now()
			WHERE id = $1 AND status = $4
			RETURNING `+jobColumns,
			id, string(job.StatusCancelled), job.CodeCancelled, string(from)))
		if err != nil {
			return fmt.Errorf("cancel job %s: %w", id, err)
		}
		cs.add(id, from, job.StatusCancelled)
		return nil
	})
	if err != nil {
		return job.Job{}, err
	}
	if ended {
		// Report how it ended.
		return s.GetJob(ctx, userID, id)
	}
	return j, nil
}

// claim moves a runnable job in status from to status to, bumping the epoch
// and attempt and taking a lease. The job is picked fairly by user, so one
// user's batch of hundreds does not make everybody else's single job wait
// behind all of it: among the users with a runnable job, the one holding the
// fewest jobs in the stage (status to) goes first, then the one the stage
// served least recently (stampColumn is when each job last entered it: a
// round robin when nobody holds anything, as with one serial worker), then
// the one whose next job comes first by order[0]; within a user, the first
// job by order.
//
// It stays one statement whose cost grows with the number of users waiting,
// not of jobs: a skip scan walks the distinct users of the from-status index
// (WITH RECURSIVE, one index probe per user), and what ranks each user is a
// few index probes on the per-user indexes of migrations 0019 (postgres) and
// 0008 (sqlite), each made once (MATERIALIZED: a column both filtered and
// sorted on was probed twice). Only then, in rank order, is a user's next
// job taken FOR UPDATE SKIP LOCKED, stopping at the first user who has one:
// concurrent claimers pass each other (a job another claim holds is skipped
// for that user's next, or the next user's) and lock nothing they do not
// take. The LIMIT ... OFFSET 0 keeps that lazy: without it PostgreSQL
// locked every waiting user's next job before sorting, and a claimer racing
// another could find them all locked and come back empty with work queued.
// (The LIMIT is there because SQLite takes an OFFSET only after one; no
// deployment has a million users waiting.)
func (s *Store) claim(ctx context.Context, from, to job.Status, stampColumn string, order []string, extra string, args ...any) (job.Job, bool, error) {
	j, err := scanJob(s.db.QueryRow(ctx, claimSQL(from, to, stampColumn, order, extra, ""), append([]any{string(to)}, args...)...))
	if errors.Is(err, sqldb.ErrNoRows) {
		return job.Job{}, false, nil
	}
	if err != nil {
		return job.Job{}, false, fmt.Errorf("claim %s job: %w", from, err)
	}
	s.report(ctx, Change{JobID: j.ID, From: from, To: to})
	return j, true, nil
}

// claimSQL is claim's statement; its parameter $1 is the status to, and
// gate, when not empty, a further condition for the claim to take anything.
func claimSQL(from, to job.Status, stampColumn string, order []string, extra, gate string) string {
	// from and to are the job package's constants, so they are spelled into
	// the text: a partial index on status serves only a literal.
	runnable := func(user string) string {
		return `FROM jobs WHERE status = '` + string(from) + `' AND user_id = ` + user + ` AND run_after <= now()` + extra + `
			ORDER BY ` + strings.Join(order, ", ") + ` LIMIT 1`
	}
	return `UPDATE jobs SET status = $1, epoch = epoch + 1, attempt = attempt + 1, lease_owner = $2,
			lease_expires_at = now() + $3::bigint * interval '1 millisecond', ` + stampColumn + ` = now(),
			progress = 0, updated_at = now()
		WHERE id = (
			WITH RECURSIVE waiting(user_id) AS (
				SELECT (SELECT user_id FROM jobs WHERE status = '` + string(from) + `' ORDER BY user_id LIMIT 1)
				UNION ALL
				SELECT (SELECT n.user_id FROM jobs n WHERE n.status = '` + string(from) + `' AND n.user_id > w.user_id ORDER BY n.user_id LIMIT 1)
				FROM waiting w WHERE w.user_id IS NOT NULL
			), ranked AS MATERIALIZED (
				SELECT w.user_id,
					(SELECT count(*) FROM jobs WHERE status = '` + string(to) + `' AND user_id = w.user_id) AS holding,
					(SELECT ` + stampColumn + ` FROM jobs WHERE user_id = w.user_id AND ` + stampColumn + ` IS NOT NULL
						ORDER BY ` + stampColumn + ` DESC LIMIT 1) AS served,
					(SELECT ` + order[0] + ` ` + runnable("w.user_id") + `) AS next
				FROM waiting w WHERE w.user_id IS NOT NULL
			)
			SELECT c.id FROM (
				SELECT (SELECT id ` + runnable("r.user_id") + ` FOR UPDATE SKIP LOCKED) AS id
				FROM ranked r WHERE r.next IS NOT NULL` + gate + `
				ORDER BY r.holding, r.served NULLS FIRST, r.next
				LIMIT 1000000 OFFSET 0) c
			WHERE c.id IS NOT NULL LIMIT 1)
			AND status = ANY($4)
		RETURNING ` + jobColumns
}

// ClaimQueued takes a queued job for the download stage, fairly by user (see
// claim).
func (s *Store) ClaimQueued(ctx context.Context, owner string, lease time.Duration) (job.Job, bool, error) {
	return s.claim(ctx, job.StatusQueued, job.StatusDownloading, "downloading_at", []string{"run_after", "created_at"}, "",
		owner, ms(lease), froms(job.StatusDownloading, job.StatusQueued))
}

// ClaimReady takes a ready job one of the node's engines serves, as the node
// advertised them (caps), that has been runnable for at least waited, fairly
// by user (see claim): a node prefetching its next job passes a grace period,
// leaving fresh work to idle nodes. A node that advertises no engine gets
// nothing.
func (s *Store) ClaimReady(ctx context.Context, owner string, caps []engines.Caps, lease, waited time.Duration) (job.Job, bool, error) {
	if len(caps) == 0 {
		return job.Job{}, false, nil
	}
	extra, args := readyClaim(owner, caps, lease, waited)
	return s.claim(ctx, job.StatusReady, job.StatusTranscribing, "transcribing_at", readyOrder, extra, args...)
}

// readyOrder is the order in which a user's ready jobs are claimed.
var readyOrder = []string{"run_after", "ready_at"}

// readyClaim is ClaimReady's condition on a user's runnable jobs (claim's
// extra) and its arguments, from $2 ($1 is the new status).
func readyClaim(owner string, caps []engines.Caps, lease, waited time.Duration) (string, []any) {
	args := []any{owner, ms(lease), froms(job.StatusTranscribing, job.StatusReady), ms(waited)} // $2..$5
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args)+1)
	}
	// Only what one engine can serve: the job's engine and model among those
	// it advertised, a translation by one that translates, a prompt by one
	// that reads it, speaker labels by one that labels speakers, a language
	// by one that recognises it (none listed: any).
	serves := make([]string, 0, len(caps))
	for _, c := range caps {
		models := c.Models
		if models == nil {
			models = []string{}
		}
		var languages []string // NULL: any
		if len(c.Languages) > 0 {
			languages = c.Languages
		}
		langs := param(languages)
		serves = append(serves, `(engine IN ('', `+param(c.Name)+`) AND (model = '' OR model = ANY(`+param(models)+`))
			AND (task = 'transcribe' OR `+param(c.Translate)+`) AND (prompt = '' OR `+param(c.Prompt)+`)
			AND (NOT speakers OR `+param(c.Speakers)+`)
			AND (language = 'auto' OR `+langs+`::text[] IS NULL OR language = ANY(`+langs+`)))`)
	}
	// Nothing for a node an admin drained, even in a poll that began before.
	return ` AND run_after <= now() - $5::bigint * interval '1 millisecond'
		  AND (` + strings.Join(serves, " OR ") + `)
		  AND NOT EXISTS (SELECT 1 FROM agents WHERE node_id = $2 AND draining)`, args
}

// Media is what the download stage learned about a job's media.
type Media struct {
	Title    string
	Uploader string
	Duration time.Duration
	AudioKey string
	// What the site says (ytdlp.Result's fields of the same names); empty
	// for direct files and uploads.
	Site       string // yt-dlp's extractor key, lower-case
	SiteID     string
	UploadDate string // YYYY-MM-DD
	Thumbnail  string
	WebpageURL string
}

// mediaSet assigns the site's fields of Media from parameters $n..$n+4, in
// siteArgs' order: one list, so every stage that records media records all
// of it.
func mediaSet(n int) string {
	return fmt.Sprintf("media_site = $%d, media_site_id = $%d, media_upload_date = $%d, media_thumbnail = $%d, media_webpage_url = $%d",
		n, n+1, n+2, n+3, n+4)
}

func (m Media) siteArgs() []any {
	return []any{m.Site, m.SiteID, m.UploadDate, m.Thumbnail, m.WebpageURL}
}

func leaseLost(id string, epoch int64) error {
	return &job.Error{Code: job.CodeLeaseLost, Message: fmt.Sprintf("job %s: epoch %d no longer holds the lease", id, epoch)}
}

// MarkReady ends the download stage: the job waits for a gpu-node.
func (s *Store) MarkReady(ctx context.Context, id string, epoch int64, m Media) error {
	tag, err := s.db.Exec(ctx, `
		UPDATE jobs SET status = $3, ready_at = now(), lease_owner = '', lease_expires_at = NULL, attempt = 0, run_after = now(),
			media_title = $4, media_duration_ms = $5, audio_key = $6, media_uploader = $8, `+mediaSet(9)+`, updated_at = now()
		WHERE id = $1 AND epoch = $2 AND status = ANY($7) AND lease_expires_at > now()`,
		append([]any{id, epoch, string(job.StatusReady), m.Title, ms(m.Duration), m.AudioKey, froms(job.StatusReady, job.StatusDownloading), m.Uploader},
			m.siteArgs()...)...)
	if err != nil {
		return fmt.Errorf("mark job %s ready: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return leaseLost(id, epoch)
	}
	s.report(ctx, Change{JobID: id, From: job.StatusDownloading, To: job.StatusReady})
	return nil
}

// Lease is the state of a lease after a renewal.
type Lease struct {
	ExpiresAt time.Time
	Cancel    bool // the job was cancelled: stop working on it
}

// leased are the statuses in which a stage holds a job.
var leased = []string{string(job.StatusDownloading), string(job.StatusTranscribing)}

// ExtendLease renews the lease of the holder of epoch. progress < 0 leaves
// progress as it is.
func (s *Store) ExtendLease(ctx context.Context, id string, epoch int64, lease time.Duration, progress float64) (Lease, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Lease{}, leaseLost(id, epoch)
	}
	var l Lease
	var st job.Status
	err := s.db.QueryRow(ctx, `
		UPDATE jobs SET lease_expires_at = now() + $3::bigint * interval '1 millisecond',
			progress = CASE WHEN $4::float8 >= 0 THEN $4::float8 ELSE progress END, updated_at = now()
		WHERE id = $1 AND epoch = $2 AND status = ANY($5) AND lease_expires_at > now()
		RETURNING lease_expires_at, status`, id, epoch, ms(lease), progress, leased).Scan(&l.ExpiresAt, &st)
	if err == nil {
		if progress >= 0 { // a renewal alone changes nothing a watcher sees
			s.report(ctx, Change{JobID: id, From: st, To: st})
		}
		return l, nil
	}
	if !errors.Is(err, sqldb.ErrNoRows) {
		return Lease{}, fmt.Errorf("extend lease of job %s: %w", id, err)
	}
	if ok, err := s.cancelledHolder(ctx, s.db, id, epoch); err != nil || !ok {
		return Lease{}, errors.Join(err, leaseLost(id, epoch))
	}
	return Lease{Cancel: true}, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) sqldb.Row
}

// cancelledHolder reports whether epoch held the job when the user cancelled it.
func (s *Store) cancelledHolder(ctx context.Context, q querier, id string, epoch int64) (bool, error) {
	var yes bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND epoch = $2 AND status = $3 AND cancel_requested)`,
		id, epoch, string(job.StatusCancelled)).Scan(&yes)
	if err != nil {
		return false, fmt.Errorf("check cancel of job %s: %w", id, err)
	}
	return yes, nil
}

// PutSegments stores segments of epoch's attempt, replacing any with the same
// seq (a retried push is harmless). A job cancelled during transcription keeps
// what its holder still sends, and the holder is told to stop.
func (s *Store) PutSegments(ctx context.Context, id string, epoch int64, segs []job.Segment, progress float64) (cancel bool, err error) {
	if _, err := uuid.Parse(id); err != nil {
		return false, leaseLost(id, epoch)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("put segments: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var status job.Status
	var cancelReq, expired bool
	err = tx.QueryRow(ctx, `SELECT status, cancel_requested, `+expiredSQL+` FROM jobs WHERE id = $1 AND epoch = $2 FOR UPDATE`, id, epoch).
		Scan(&status, &cancelReq, &expired)
	switch {
	case errors.Is(err, sqldb.ErrNoRows):
		return false, leaseLost(id, epoch)
	case err != nil:
		return false, fmt.Errorf("put segments of job %s: %w", id, err)
	case status == job.StatusCancelled && cancelReq:
		cancel = true
	case status != job.StatusTranscribing || expired:
		return false, leaseLost(id, epoch)
	}
	batch := &sqldb.Batch{}
	queueSegments(batch, id, epoch, segs)
	if progress >= 0 && !cancel {
		batch.Queue(`UPDATE jobs SET progress = $2, updated_at = now() WHERE id = $1`, id, progress)
	}
	if err := tx.SendBatch(ctx, batch); err != nil {
		return false, fmt.Errorf("put segments of job %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("put segments of job %s: %w", id, err)
	}
	s.report(ctx, Change{JobID: id, From: status, To: status})
	return cancel, nil
}

// queueSegments upserts segs under epoch: a retried push rewrites, never adds.
func queueSegments(batch *sqldb.Batch, id string, epoch int64, segs []job.Segment) {
	for _, sg := range segs {
		var words []byte
		if len(sg.Words) > 0 {
			words, _ = json.Marshal(sg.Words)
		}
		batch.Queue(`INSERT INTO segments (job_id, epoch, seq, start_ms, end_ms, text, words, speaker) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (job_id, epoch, seq) DO UPDATE SET start_ms = EXCLUDED.start_ms, end_ms = EXCLUDED.end_ms,
				text = EXCLUDED.text, words = EXCLUDED.words, speaker = EXCLUDED.speaker`,
			id, epoch, sg.Seq, sg.StartMS, sg.EndMS, sg.Text, words, sg.Speaker)
	}
}

// CompleteFromCaptions ends the download stage with the video's own captions
// as the transcript: its segments under the holder's epoch and the job
// succeeded, in one transaction, without a gpu-node. from is
// job.FromCaptions or job.FromAutomaticCaptions.
func (s *Store) CompleteFromCaptions(ctx context.Context, id string, epoch int64, m Media, language, from string, segs []job.Segment) error {
	return s.changeTx(ctx, "complete job "+id+" from captions", func(tx sqldb.Tx, cs *changes) error {
		tag, err := tx.Exec(ctx, `
			UPDATE jobs SET status = $3, progress = 1, finished_at = now(), transcribed_from = $4, detected_language = $5,
				media_title = $6, media_uploader = $7, media_duration_ms = $8, `+mediaSet(10)+`,
				lease_owner = '', lease_expires_at = NULL, error_code = '', error_message = '', updated_at = now()
			WHERE id = $1 AND epoch = $2 AND status = ANY($9) AND lease_expires_at > now()`,
			append([]any{id, epoch, string(job.StatusSucceeded), from, language, m.Title, m.Uploader, ms(m.Duration),
				froms(job.StatusSucceeded, job.StatusDownloading)}, m.siteArgs()...)...)
		if err != nil {
			return fmt.Errorf("complete job %s from captions: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return leaseLost(id, epoch)
		}
		batch := &sqldb.Batch{}
		queueSegments(batch, id, epoch, segs)
		if err := tx.SendBatch(ctx, batch); err != nil {
			return fmt.Errorf("store captions of job %s: %w", id, err)
		}
		cs.add(id, job.StatusDownloading, job.StatusSucceeded)
		return nil
	})
}

// Complete marks epoch's transcription succeeded, once every segment 0..n-1 it
// announced is stored. Completing an already succeeded epoch again is a no-op
// and reports done=false: only the call that finished the job reports true.
func (s *Store) Complete(ctx context.Context, id string, epoch int64, detectedLanguage string, segmentCount int) (done bool, err error) {
	c, err := s.CompleteAttempt(ctx, id, epoch, detectedLanguage, segmentCount)
	return c.Done, err
}

// Completion is what CompleteAttempt did.
type Completion struct {
	Done     bool          // this call finished the job (false: the epoch had finished it already)
	ParentID string        // the long audio whose chunk this job is; "" for a job of its own
	Took     time.Duration // claim to finish (the transcribe stage), when Done
}

// completeSet ends a transcription: the fields both completion statements
// set, status and language from the parameters named, and what they return
// (completeReturning, in scanCompletion's order). The finishing trigger
// writes the usage ledger and the outbox rows in the same statement, as it
// does for every other way a job finishes.
func completeSet(status, language string) string {
	return `status = ` + status + `, detected_language = ` + language + `, progress = 1, finished_at = now(), transcribed_from = 'speech',
			lease_owner = '', lease_expires_at = NULL, error_code = '', error_message = '', updated_at = now()`
}

const completeReturning = `RETURNING coalesce(j.parent_id::text, ''), j.transcribing_at, j.finished_at`

func scanCompletion(row sqldb.Row) (Completion, error) {
	var c Completion
	var from, to *time.Time
	if err := row.Scan(&c.ParentID, &from, &to); err != nil {
		return Completion{}, err
	}
	c.Done = true
	if from != nil && to != nil {
		c.Took = to.Sub(*from)
	}
	return c, nil
}

// completeFast is the usual completion in one statement, one round trip: the
// holder completes with every segment stored, fenced by its epoch and lease.
// When it matches nothing, the slow path (complete) explains why.
var completeFast = `
		UPDATE jobs AS j SET ` + completeSet("$3", "$4") + `
		FROM (SELECT count(*) AS n, coalesce(min(seq), 0) AS lo, coalesce(max(seq), -1) AS hi
		      FROM segments WHERE job_id = $1 AND epoch = $2) seg
		WHERE j.id = $1 AND j.epoch = $2 AND j.status = ANY($6) AND j.lease_expires_at > now()
			AND seg.n = $5 AND seg.lo = 0 AND seg.hi = $5 - 1
		` + completeReturning

func completeFastArgs(id string, epoch int64, detectedLanguage string, segmentCount int) []any {
	return []any{id, epoch, string(job.StatusSucceeded), detectedLanguage, segmentCount, froms(job.StatusSucceeded, job.StatusTranscribing)}
}

// CompleteAndClaimReady is complete-and-next: CompleteAttempt, then
// ClaimReady for the same node, in one transaction and on PostgreSQL in one
// round trip, so that a busy node's job costs one commit instead of two.
// The claim sees the completion, and takes nothing unless the job stands
// succeeded at epoch. When the completion takes the slow path (complete),
// the claim follows it on its own.
//
// The error is the completion's alone: the completion never fails for the
// claim's sake. A claim that fails takes nothing (claimed is false), and the
// node, polling AcquireJob next, hears of the error there; when the batch
// as a whole fails, the completion is tried on its own.
func (s *Store) CompleteAndClaimReady(ctx context.Context, id string, epoch int64, detectedLanguage string, segmentCount int,
	owner string, caps []engines.Caps, lease, waited time.Duration,
) (c Completion, next job.Job, claimed bool, err error) {
	if _, err := uuid.Parse(id); err != nil || len(caps) == 0 {
		c, err := s.CompleteAttempt(ctx, id, epoch, detectedLanguage, segmentCount)
		return c, job.Job{}, false, err
	}
	extra, args := readyClaim(owner, caps, lease, waited)
	args = append(append([]any{string(job.StatusTranscribing)}, args...), id, epoch)
	gate := fmt.Sprintf(` AND EXISTS (SELECT 1 FROM jobs d WHERE d.id = $%d AND d.epoch = $%d AND d.status = '%s')`,
		len(args)-1, len(args), job.StatusSucceeded)
	var b sqldb.Batch
	completed := false
	b.QueueRow(func(r sqldb.Row) error {
		var err error
		c, err = scanCompletion(r)
		completed = err == nil
		return answer(err)
	}, completeFast, completeFastArgs(id, epoch, detectedLanguage, segmentCount)...)
	b.QueueRow(func(r sqldb.Row) error {
		var err error
		next, err = scanJob(r)
		claimed = err == nil
		return answer(err)
	}, claimSQL(job.StatusReady, job.StatusTranscribing, "transcribing_at", readyOrder, extra, gate), args...)
	if err := s.db.SendBatch(ctx, &b); err != nil {
		c, err := s.CompleteAttempt(ctx, id, epoch, detectedLanguage, segmentCount)
		return c, job.Job{}, false, err
	}
	if completed {
		s.report(ctx, Change{JobID: id, From: job.StatusTranscribing, To: job.StatusSucceeded})
	}
	if claimed {
		s.report(ctx, Change{JobID: next.ID, From: job.StatusReady, To: job.StatusTranscribing})
	}
	if completed {
		return c, next, claimed, nil
	}
	// The fast path matched nothing: the slow path says why (a refusal), or
	// that the job had succeeded at epoch already (a repeated call, whose
	// claim, gated on just that, may have taken a job).
	if c, err = s.complete(ctx, id, epoch, detectedLanguage, segmentCount); err != nil {
		if claimed { // it succeeded, yet the slow path refuses: hand the claim back
			_, rerr := s.Release(context.WithoutCancel(ctx), next.ID, next.Epoch, 0)
			err = errors.Join(err, rerr)
		}
		return c, job.Job{}, false, err
	}
	if !claimed {
		next, claimed, _ = s.ClaimReady(ctx, owner, caps, lease, waited)
	}
	return c, next, claimed, nil
}

// answer is a row's error, ErrNoRows (nothing matched) being an answer.
func answer(err error) error {
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil
	}
	return err
}

// CompleteAttempt is Complete, also saying what the caller needs next — the
// parent to stitch, the stage's duration — so it need not read the job again.
func (s *Store) CompleteAttempt(ctx context.Context, id string, epoch int64, detectedLanguage string, segmentCount int) (Completion, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Completion{}, leaseLost(id, epoch)
	}
	c, err := scanCompletion(s.db.QueryRow(ctx, completeFast, completeFastArgs(id, epoch, detectedLanguage, segmentCount)...))
	switch {
	case err == nil:
		s.report(ctx, Change{JobID: id, From: job.StatusTranscribing, To: job.StatusSucceeded})
		return c, nil
	case !errors.Is(err, sqldb.ErrNoRows):
		return Completion{}, fmt.Errorf("complete job %s: %w", id, err)
	}
	return s.complete(ctx, id, epoch, detectedLanguage, segmentCount)
}

func (s *Store) complete(ctx context.Context, id string, epoch int64, detectedLanguage string, segmentCount int) (Completion, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return Completion{}, fmt.Errorf("complete job %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var status job.Status
	var cur int64
	var expired bool
	var parent string
	err = tx.QueryRow(ctx, `SELECT status, epoch, `+expiredSQL+`, coalesce(parent_id::text, '') FROM jobs WHERE id = $1 FOR UPDATE`, id).
		Scan(&status, &cur, &expired, &parent)
	switch {
	case errors.Is(err, sqldb.ErrNoRows):
		return Completion{}, leaseLost(id, epoch)
	case err != nil:
		return Completion{}, fmt.Errorf("complete job %s: %w", id, err)
	case cur != epoch:
		return Completion{}, leaseLost(id, epoch)
	case status == job.StatusSucceeded:
		return Completion{ParentID: parent}, nil
	case status != job.StatusTranscribing || expired: // only a transcription holder completes here
		return Completion{}, leaseLost(id, epoch)
	}
	var n, lo, hi int
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), -1) FROM segments WHERE job_id = $1 AND epoch = $2`,
		id, epoch).Scan(&n, &lo, &hi); err != nil {
		return Completion{}, fmt.Errorf("count segments of job %s: %w", id, err)
	}
	if n != segmentCount || lo != 0 || hi != segmentCount-1 {
		return Completion{}, job.Errorf(job.CodeConflict, "job %s: %d segments announced but %d stored (seq %d..%d)", id, segmentCount, n, lo, hi)
	}
	c, err := scanCompletion(tx.QueryRow(ctx, `UPDATE jobs AS j SET `+completeSet("$2", "$3")+` WHERE j.id = $1 `+completeReturning,
		id, string(job.StatusSucceeded), detectedLanguage))
	if err != nil {
		return Completion{}, fmt.Errorf("complete job %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Completion{}, fmt.Errorf("complete job %s: %w", id, err)
	}
	s.report(ctx, Change{JobID: id, From: job.StatusTranscribing, To: job.StatusSucceeded})
	return c, nil
}

// held is a locked job row that a stage holds.
type held struct {
	id                   string
	epoch                int64
	status               job.Status
	attempt, maxAttempts int
	owner                string
}

// lockHeld locks the row of a job that epoch holds. cancelled reports a job
// the user cancelled meanwhile; any other mismatch is a lost lease.
func lockHeld(ctx context.Context, tx sqldb.Tx, id string, epoch int64) (h held, cancelled bool, err error) {
	if _, err := uuid.Parse(id); err != nil {
		return h, false, leaseLost(id, epoch)
	}
	var expired bool
	err = tx.QueryRow(ctx, `SELECT id, epoch, status, attempt, max_attempts, lease_owner, `+expiredSQL+` FROM jobs WHERE id = $1 FOR UPDATE`, id).
		Scan(&h.id, &h.epoch, &h.status, &h.attempt, &h.maxAttempts, &h.owner, &expired)
	switch {
	case errors.Is(err, sqldb.ErrNoRows):
		return h, false, leaseLost(id, epoch)
	case err != nil:
		return h, false, fmt.Errorf("lock job %s: %w", id, err)
	case h.status == job.StatusCancelled:
		return h, true, nil
	case h.epoch != epoch || (h.status != job.StatusDownloading && h.status != job.StatusTranscribing) || expired:
		return h, false, leaseLost(id, epoch)
	}
	return h, false, nil
}

// expiredSQL is true for a lease past its expiry. An expired lease is lost
// even before the rescuer requeues the job: a holder that fell silent for a
// whole lease (paused, partitioned) may not write, so a late write is always
// refused, whether or not another node has the job yet.
const expiredSQL = `coalesce(lease_expires_at <= now(), false)`

// inTx runs fn in a transaction and commits when it succeeds.
func (s *Store) inTx(ctx context.Context, what string, fn func(sqldb.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Fail records a failed attempt of epoch. A retryable failure with attempts
// left requeues the job for its current stage after a backoff; anything else
// fails the job. On a job the user cancelled meanwhile it returns cancelled.
func (s *Store) Fail(ctx context.Context, id string, epoch int64, e *job.Error) (job.Status, error) {
	var st job.Status
	err := s.changeTx(ctx, "fail job "+id, func(tx sqldb.Tx, cs *changes) error {
		h, cancelled, err := lockHeld(ctx, tx, id, epoch)
		if err != nil {
			return err
		}
		if cancelled {
			st = job.StatusCancelled
			return nil
		}
		st, err = failHeld(ctx, tx, cs, h, e)
		return err
	})
	return st, err
}

// Release hands a held job back unfinished — its holder is shutting down, or a
// dependency's circuit breaker is open — to be claimed again after `after`.
// The attempt does not count: the job did not fail. On a job the user
// cancelled meanwhile it returns cancelled.
func (s *Store) Release(ctx context.Context, id string, epoch int64, after time.Duration) (job.Status, error) {
	var st job.Status
	err := s.changeTx(ctx, "release job "+id, func(tx sqldb.Tx, cs *changes) error {
		h, cancelled, err := lockHeld(ctx, tx, id, epoch)
		if err != nil {
			return err
		}
		if cancelled {
			st = job.StatusCancelled
			return nil
		}
		st = requeueTarget(h.status)
		_, err = tx.Exec(ctx, `UPDATE jobs SET status = $2, attempt = greatest(attempt - 1, 0), lease_owner = '',
			lease_expires_at = NULL, progress = 0, run_after = now() + $4::bigint * interval '1 millisecond', updated_at = now()
			WHERE id = $1 AND status = ANY($3)`, id, string(st), froms(st, h.status), ms(after))
		if err != nil {
			return fmt.Errorf("release job %s: %w", id, err)
		}
		cs.add(id, h.status, st)
		return nil
	})
	return st, err
}

// requeueTarget is where a held job goes back to for another attempt: a
// download starts over from queued, a transcription from ready (its audio is
// stored already).
func requeueTarget(held job.Status) job.Status {
	if held == job.StatusTranscribing {
		return job.StatusReady
	}
	return job.StatusQueued
}

// retryDelay is how long a job waits before attempt n+1: 2 s doubling per
// attempt, at most 5 minutes, full jitter.
func retryDelay(attempt int) time.Duration {
	return backoff.Full(attempt, 2*time.Second, 5*time.Minute)
}

// failHeld records the attempt and requeues or fails a locked, held job.
func failHeld(ctx context.Context, tx sqldb.Tx, cs *changes, h held, e *job.Error) (job.Status, error) {
	stage := "download"
	if h.status == job.StatusTranscribing {
		stage = "transcribe"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_attempts (job_id, attempt, epoch, stage, owner, error_code, error_message)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, h.id, h.attempt, h.epoch, stage, h.owner, e.Code, e.Message); err != nil {
		return "", fmt.Errorf("record attempt of job %s: %w", h.id, err)
	}
	if e.Retryable && h.attempt < h.maxAttempts {
		to := requeueTarget(h.status)
		_, err := tx.Exec(ctx, `UPDATE jobs SET status = $2, lease_owner = '', lease_expires_at = NULL, progress = 0,
			run_after = now() + $3::bigint * interval '1 millisecond', updated_at = now()
			WHERE id = $1 AND status = ANY($4)`, h.id, string(to), ms(retryDelay(h.attempt)), froms(to, h.status))
		if err != nil {
			return "", fmt.Errorf("requeue job %s: %w", h.id, err)
		}
		cs.add(h.id, h.status, to)
		return to, nil
	}
	code, msg := e.Code, e.Message
	if e.Retryable {
		code, msg = job.CodeAttemptsExceeded, fmt.Sprintf("gave up after %d attempts; the last failed with %s: %s", h.attempt, e.Code, e.Message)
	}
	_, err := tx.Exec(ctx, `UPDATE jobs SET status = $2, error_code = $3, error_message = $4, lease_owner = '', lease_expires_at = NULL,
		finished_at = now(), updated_at = now() WHERE id = $1 AND status = ANY($5)`,
		h.id, string(job.StatusFailed), code, msg, froms(job.StatusFailed, h.status))
	if err != nil {
		return "", fmt.Errorf("fail job %s: %w", h.id, err)
	}
	cs.add(h.id, h.status, job.StatusFailed)
	return job.StatusFailed, failParent(ctx, tx, cs, h.id, code, msg)
}

// RescueExpired hands back up to limit jobs whose holder stopped renewing its
// lease (a crashed node or core instance): each is requeued for its stage, or
// failed once its attempts are used up. It returns the ids it handled, so
// their watchers can be woken.
func (s *Store) RescueExpired(ctx context.Context, limit int) ([]string, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("rescue: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT id, epoch, status, attempt, max_attempts, lease_owner FROM jobs
		WHERE status = ANY($1) AND lease_expires_at < now()
		ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, leased, limit)
	if err != nil {
		return nil, fmt.Errorf("rescue: %w", err)
	}
	expired, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (held, error) {
		var h held
		err := r.Scan(&h.id, &h.epoch, &h.status, &h.attempt, &h.maxAttempts, &h.owner)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("rescue: %w", err)
	}
	var cs changes
	for _, h := range expired {
		e := &job.Error{Code: job.CodeLeaseLost, Message: fmt.Sprintf("%s stopped renewing its lease", h.owner), Retryable: true}
		if _, err := failHeld(ctx, tx, &cs, h, e); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("rescue: %w", err)
	}
	s.report(ctx, cs...)
	ids := make([]string, 0, len(expired))
	for _, h := range expired {
		ids = append(ids, h.id)
	}
	return ids, nil
}

// Segments returns epoch's segments with seq > afterSeq, in order.
func (s *Store) Segments(ctx context.Context, id string, epoch int64, afterSeq int) ([]job.Segment, error) {
	rows, err := s.db.Query(ctx, `SELECT seq, start_ms, end_ms, text, words, speaker FROM segments
		WHERE job_id = $1 AND epoch = $2 AND seq > $3 ORDER BY seq`, id, epoch, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("read segments of job %s: %w", id, err)
	}
	segs, err := sqldb.Collect(rows, nil, func(r sqldb.Row) (job.Segment, error) {
		var sg job.Segment
		var words []byte
		if err := r.Scan(&sg.Seq, &sg.StartMS, &sg.EndMS, &sg.Text, &words, &sg.Speaker); err != nil {
			return sg, err
		}
		if len(words) > 0 {
			if err := json.Unmarshal(words, &sg.Words); err != nil {
				return sg, fmt.Errorf("decode words: %w", err)
			}
		}
		return sg, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read segments of job %s: %w", id, err)
	}
	return segs, nil
}

// Attempt is one failed or expired attempt of a job.
type Attempt struct {
	Attempt                               int
	Epoch                                 int64
	Stage, Owner, ErrorCode, ErrorMessage string
	At                                    time.Time
}

// Attempts lists a job's failed attempts, oldest first.
func (s *Store) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	rows, err := s.db.Query(ctx, `SELECT attempt, epoch, stage, owner, error_code, error_message, at
		FROM job_attempts WHERE job_id = $1 ORDER BY at, epoch`, id)
	if err != nil {
		return nil, fmt.Errorf("read attempts of job %s: %w", id, err)
	}
	return sqldb.Collect(rows, nil, func(r sqldb.Row) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.Attempt, &a.Epoch, &a.Stage, &a.Owner, &a.ErrorCode, &a.ErrorMessage, &a.At)
		return a, err
	})
}

// CountUnfinished counts jobs (chunks included) per unfinished state.
func (s *Store) CountUnfinished(ctx context.Context) (map[job.Status]int, error) {
	return s.countByStatus(ctx, `SELECT status, count(*) FROM jobs WHERE status = ANY($1) GROUP BY status`, activeStatuses)
}

// countByStatus reads (status, count) rows into a map.
func (s *Store) countByStatus(ctx context.Context, q string, args ...any) (map[job.Status]int, error) {
	rows, err := s.db.Query(ctx, q, args...)
	type count struct {
		st job.Status
		n  int
	}
	counts, err := sqldb.Collect(rows, err, func(r sqldb.Row) (c count, err error) { return c, r.Scan(&c.st, &c.n) })
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	out := map[job.Status]int{}
	for _, c := range counts {
		out[c.st] = c.n
	}
	return out, nil
}

// SetSpeakerNames replaces the names the owner gave the speakers of a job
// (label → name; empty: none), which every format then shows. With userID
// set, another user's job is not found.
func (s *Store) SetSpeakerNames(ctx context.Context, userID, id string, names map[string]string) (job.Job, error) {
	if _, err := uuid.Parse(id); err != nil {
		return job.Job{}, fmt.Errorf("name the speakers of job %q: %w", id, job.ErrNotFound)
	}
	if names == nil {
		names = map[string]string{}
	}
	b, err := json.Marshal(names)
	if err != nil {
		return job.Job{}, fmt.Errorf("name the speakers of job %s: %w", id, err)
	}
	j, err := scanJob(s.db.QueryRow(ctx, `UPDATE jobs SET speaker_names = $3, updated_at = now()
		WHERE id = $1 AND ($2 = '' OR user_id::text = $2) AND parent_id IS NULL
		RETURNING `+jobColumns, id, userID, b))
	if errors.Is(err, sqldb.ErrNoRows) {
		return job.Job{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", id)}
	}
	if err != nil {
		return job.Job{}, fmt.Errorf("name the speakers of job %s: %w", id, err)
	}
	return j, nil
}

// vocabularyJSON is how a job's vocabulary is stored: a JSON array, the
// same bytes for the same terms, so the transcript cache can compare it.
func vocabularyJSON(terms []string) string {
	if len(terms) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(terms) // strings always marshal
	return string(b)
}
