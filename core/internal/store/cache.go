package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// cacheKey is what must be equal for one job's transcript to be another's:
// the media (canonical URL, or an upload's content key) and every option
// that changes the text — language, source, engine, model, task (a
// translation is not a transcript) and prompt (it steers the spelling) —
// and speakers with their bounds (labels, and how many, are part of the
// transcript) — and the vocabulary and hallucination guards (they change
// the text). Speaker names are not: they are the owner's, never copied.
const cacheKey = `d.canonical_url = j.canonical_url AND d.source_kind = j.source_kind AND d.language = j.language
	AND d.source = j.source AND d.engine = j.engine AND d.model = j.model AND d.task = j.task AND d.prompt = j.prompt
	AND d.speakers = j.speakers AND d.min_speakers = j.min_speakers AND d.max_speakers = j.max_speakers
	AND d.vocabulary = j.vocabulary AND d.silence_guard = j.silence_guard AND d.repetition_guard = j.repetition_guard`

// CompleteFromCache finishes a job the download stage just claimed with the
// transcript of an earlier succeeded job with the same cache key — whoever
// asked for it: the media and options are the same. Its segments are copied
// under this job's epoch, so the copy outlives the original. It reports
// whether there was such a job.
//
// The copy names no other user's job: the user's own donor is preferred,
// reused_from is set only when the donor is the same user's, and an upload
// keeps its own file name as its title, never the donor's.
func (s *Store) CompleteFromCache(ctx context.Context, id string, epoch int64) (hit bool, err error) {
	var donor, donorUser, user, kind, url string
	var donorEpoch int64
	lookUp := func(q querier) (bool, error) {
		err := q.QueryRow(ctx, `
			SELECT d.id, d.epoch, d.user_id, j.user_id, j.source_kind, j.url FROM jobs j JOIN jobs d
				ON `+cacheKey+` AND d.status = 'succeeded' AND d.id <> j.id AND NOT d.transcript_expired
			WHERE j.id = $1
			ORDER BY d.user_id = j.user_id DESC, d.finished_at DESC LIMIT 1`, id).Scan(&donor, &donorEpoch, &donorUser, &user, &kind, &url)
		if errors.Is(err, sqldb.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("look up the transcript cache: %w", err)
		}
		return true, nil
	}
	// Most downloads miss: they learn it from one read, without the
	// transaction (on SQLite, without taking the writer's turn).
	if found, err := lookUp(s.db); err != nil || !found {
		return false, err
	}
	err = s.changeTx(ctx, "complete job "+id+" from the transcript cache", func(tx sqldb.Tx, cs *changes) error {
		if found, err := lookUp(tx); err != nil || !found {
			return err
		}
		var reusedFrom, title, uploader any // nil: NULL, and the donor's media fields
		if donorUser == user {
			reusedFrom = donor
		}
		if job.SourceKind(kind) == job.SourceUpload {
			title, uploader = job.UploadName(url), ""
		}
		tag, err := tx.Exec(ctx, `
			UPDATE jobs AS j SET status = $4, progress = 1, finished_at = now(), reused_from = $6::uuid,
				transcribed_from = d.transcribed_from, detected_language = d.detected_language,
				media_title = coalesce($7::text, d.media_title), media_uploader = coalesce($8::text, d.media_uploader),
				media_duration_ms = d.media_duration_ms, media_site = d.media_site, media_site_id = d.media_site_id,
				media_upload_date = d.media_upload_date, media_thumbnail = d.media_thumbnail, media_webpage_url = d.media_webpage_url,
				audio_key = d.audio_key, silence_dropped = d.silence_dropped, repetition_dropped = d.repetition_dropped,
				repetition_trimmed = d.repetition_trimmed, lease_owner = '', lease_expires_at = NULL, updated_at = now()
			FROM jobs d
			WHERE j.id = $1 AND j.epoch = $2 AND j.status = ANY($5) AND j.lease_expires_at > now() AND d.id = $3`,
			id, epoch, donor, string(job.StatusSucceeded), froms(job.StatusSucceeded, job.StatusDownloading), reusedFrom, title, uploader)
		if err != nil {
			return fmt.Errorf("complete job %s from the cache: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return leaseLost(id, epoch)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO segments (job_id, epoch, seq, start_ms, end_ms, text, words, speaker)
			SELECT $1, $2, seq, start_ms, end_ms, text, words, speaker FROM segments WHERE job_id = $3 AND epoch = $4`,
			id, epoch, donor, donorEpoch); err != nil {
			return fmt.Errorf("copy the cached transcript into job %s: %w", id, err)
		}
		cs.add(id, job.StatusDownloading, job.StatusSucceeded)
		hit = true
		return nil
	})
	return hit, err
}
