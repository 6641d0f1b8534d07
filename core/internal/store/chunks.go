package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ytcaption/ytcaption/core/internal/sqldb"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Chunk is one piece of long audio: its stored audio, where it starts in the
// whole, and how long it lasts.
type Chunk struct {
	AudioKey string
	OffsetMS int64
	Duration int64 // milliseconds
}

// SplitIntoChunks ends the download stage of long audio: the job becomes the
// parent of one ready child job per chunk — claimed by idle gpu-nodes in
// parallel, each with the usual lease and fencing — and waits, transcribing,
// for them. m describes the whole.
func (s *Store) SplitIntoChunks(ctx context.Context, id string, epoch int64, m Media, chunks []Chunk) error {
	return s.changeTx(ctx, "split job "+id+" into chunks", func(tx sqldb.Tx, cs *changes) error {
		tag, err := tx.Exec(ctx, `
			UPDATE jobs SET status = $3, transcribing_at = now(), lease_owner = '', lease_expires_at = NULL, attempt = 0,
				progress = 0, chunks = $4, media_title = $5, media_uploader = $6, media_duration_ms = $7, audio_key = $8,
				`+mediaSet(10)+`, updated_at = now()
			WHERE id = $1 AND epoch = $2 AND status = ANY($9) AND lease_expires_at > now()`,
			append([]any{id, epoch, string(job.StatusTranscribing), len(chunks), m.Title, m.Uploader, ms(m.Duration), m.AudioKey,
				froms(job.StatusTranscribing, job.StatusDownloading)}, m.siteArgs()...)...)
		if err != nil {
			return fmt.Errorf("split job %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return leaseLost(id, epoch)
		}
		batch := &sqldb.Batch{}
		for i, c := range chunks {
			// A child is the parent's request for its stretch of audio, ready
			// at once; its canonical URL is its own, so it is nobody's cache.
			batch.Queue(`
				INSERT INTO jobs (user_id, status, url, canonical_url, source_kind, source, language, engine, model, task, prompt,
					vocabulary, silence_guard, repetition_guard, max_attempts, ready_at, audio_key, media_title, media_duration_ms, parent_id, chunk_index, chunk_offset_ms, trace_parent)
				SELECT user_id, $2, url, canonical_url || $7, source_kind, 'asr', language, engine, model, task, prompt,
					vocabulary, silence_guard, repetition_guard, max_attempts, now(), $4, media_title, $5, id, $3, $6, trace_parent
				FROM jobs WHERE id = $1`,
				id, string(job.StatusReady), i, c.AudioKey, c.Duration, c.OffsetMS, fmt.Sprintf("#chunk=%d", i))
		}
		if err := tx.SendBatch(ctx, batch); err != nil {
			return fmt.Errorf("make chunks of job %s: %w", id, err)
		}
		rows, err := tx.Query(ctx, `SELECT id::text FROM jobs WHERE parent_id = $1 ORDER BY chunk_index`, id)
		children, err := sqldb.Collect(rows, err, sqldb.Scalar[string])
		if err != nil {
			return fmt.Errorf("read the chunks of job %s: %w", id, err)
		}
		cs.add(id, job.StatusDownloading, job.StatusTranscribing)
		for _, c := range children {
			cs.add(c, "", job.StatusReady)
		}
		return nil
	})
}

// FinishParent is called when a chunk job succeeded: its parent's progress
// becomes the share of audio its chunks have done, and once every chunk has
// succeeded their segments — shifted by each chunk's offset, renumbered in
// order — become the parent's transcript and the parent succeeds. It returns
// the parent's id ("" when child is not a chunk) and whether it finished.
func (s *Store) FinishParent(ctx context.Context, child string) (parent string, done bool, err error) {
	if err := s.db.QueryRow(ctx, `SELECT coalesce(parent_id::text, '') FROM jobs WHERE id = $1`, child).Scan(&parent); err != nil {
		return "", false, fmt.Errorf("find the parent of job %s: %w", child, err)
	}
	if parent == "" {
		return "", false, nil
	}
	done, err = s.finishParent(ctx, parent)
	return parent, done, err
}

// Stitch is FinishParent for a caller that knows the parent already
// (CompleteAttempt's ParentID): the chunk's completion named it.
func (s *Store) Stitch(ctx context.Context, parent string) (done bool, err error) {
	return s.finishParent(ctx, parent)
}

// FinishStitchable finishes the parents whose chunks all succeeded but which
// were not stitched — core stopped between a chunk's completion and the
// stitch — and returns their ids. The rescuer runs it.
func (s *Store) FinishStitchable(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `
		SELECT id::text FROM jobs p WHERE status = 'transcribing' AND chunks > 0
			AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = p.id AND c.status <> 'succeeded')
		LIMIT 100`)
	if err != nil {
		return nil, fmt.Errorf("find stitchable jobs: %w", err)
	}
	ids, err := sqldb.Collect(rows, nil, sqldb.Scalar[string])
	if err != nil {
		return nil, fmt.Errorf("find stitchable jobs: %w", err)
	}
	var done []string
	for _, id := range ids {
		ok, err := s.finishParent(ctx, id)
		if err != nil {
			return done, err
		}
		if ok {
			done = append(done, id)
		}
	}
	return done, nil
}

func (s *Store) finishParent(ctx context.Context, parent string) (done bool, err error) {
	err = s.changeTx(ctx, "finish job "+parent, func(tx sqldb.Tx, cs *changes) error {
		var status job.Status
		var epoch int64
		var chunks int
		err := tx.QueryRow(ctx, `SELECT status, epoch, chunks FROM jobs WHERE id = $1 FOR UPDATE`, parent).Scan(&status, &epoch, &chunks)
		if err != nil || status != job.StatusTranscribing {
			return err // failed or cancelled meanwhile: nothing to stitch
		}
		var succeeded int
		var progress float64
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE status = 'succeeded'),
				coalesce(sum(media_duration_ms * CASE WHEN status = 'succeeded' THEN 1 ELSE progress END) / nullif(sum(media_duration_ms), 0), 0)
			FROM jobs WHERE parent_id = $1`, parent).Scan(&succeeded, &progress); err != nil {
			return fmt.Errorf("count the chunks of job %s: %w", parent, err)
		}
		if succeeded < chunks {
			if _, err := tx.Exec(ctx, `UPDATE jobs SET progress = $2, updated_at = now() WHERE id = $1`, parent, progress); err != nil {
				return err
			}
			cs.add(parent, job.StatusTranscribing, job.StatusTranscribing)
			return nil
		}
		segs, lang, err := stitch(ctx, tx, parent)
		if err != nil {
			return err
		}
		batch := &sqldb.Batch{}
		queueSegments(batch, parent, epoch, segs)
		// What the chunks' hallucination guards removed is the whole's.
		batch.Queue(`UPDATE jobs SET status = $2, progress = 1, finished_at = now(), transcribed_from = 'speech', detected_language = $3,
			silence_dropped = (SELECT coalesce(sum(silence_dropped), 0) FROM jobs WHERE parent_id = $1),
			repetition_dropped = (SELECT coalesce(sum(repetition_dropped), 0) FROM jobs WHERE parent_id = $1),
			repetition_trimmed = (SELECT coalesce(sum(repetition_trimmed), 0) FROM jobs WHERE parent_id = $1),
			updated_at = now() WHERE id = $1`, parent, string(job.StatusSucceeded), lang)
		if err := tx.SendBatch(ctx, batch); err != nil {
			return fmt.Errorf("stitch job %s: %w", parent, err)
		}
		cs.add(parent, job.StatusTranscribing, job.StatusSucceeded)
		done = true
		return nil
	})
	return done, err
}

// stitch reads every chunk's segments in order and shifts them to the
// parent's time: offsets are whole milliseconds (chunks are cut at multiples
// of 16 samples at 16 kHz), so times stay exact; a segment never outlasts its
// chunk, so they stay monotonic.
func stitch(ctx context.Context, tx sqldb.Tx, parent string) ([]job.Segment, string, error) {
	rows, err := tx.Query(ctx, `
		SELECT c.chunk_offset_ms, c.media_duration_ms, c.detected_language, s.start_ms, s.end_ms, s.text, s.words
		FROM jobs c JOIN segments s ON s.job_id = c.id AND s.epoch = c.epoch
		WHERE c.parent_id = $1 ORDER BY c.chunk_index, s.seq`, parent)
	if err != nil {
		return nil, "", fmt.Errorf("read the chunks of job %s: %w", parent, err)
	}
	defer rows.Close()
	var segs []job.Segment
	lang := ""
	for rows.Next() {
		var off, dur int64
		var chunkLang string
		var sg job.Segment
		var words []byte
		if err := rows.Scan(&off, &dur, &chunkLang, &sg.StartMS, &sg.EndMS, &sg.Text, &words); err != nil {
			return nil, "", err
		}
		if lang == "" {
			lang = chunkLang
		}
		clamp := func(v int64) int64 { return off + min(max(v, 0), dur) }
		sg.Seq, sg.StartMS, sg.EndMS = len(segs), clamp(sg.StartMS), clamp(sg.EndMS)
		if len(words) > 0 {
			if err := json.Unmarshal(words, &sg.Words); err != nil {
				return nil, "", fmt.Errorf("words of a chunk of job %s: %w", parent, err)
			}
			for i := range sg.Words {
				sg.Words[i].StartMS, sg.Words[i].EndMS = clamp(sg.Words[i].StartMS), clamp(sg.Words[i].EndMS)
			}
		}
		segs = append(segs, sg)
	}
	return segs, lang, rows.Err()
}

// failParent fails the parent of a chunk that failed for good, with its
// error, and cancels the other chunks: the whole cannot be stitched.
func failParent(ctx context.Context, tx sqldb.Tx, cs *changes, child, code, msg string) error {
	var parent string
	err := tx.QueryRow(ctx, `
		UPDATE jobs AS p SET status = $2, error_code = $3, error_message = $4, finished_at = now(), updated_at = now()
		FROM jobs c WHERE c.id = $1 AND p.id = c.parent_id AND p.status = $5
		RETURNING p.id::text`, child, string(job.StatusFailed), code, "a part of the audio failed: "+msg, string(job.StatusTranscribing)).Scan(&parent)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fail the parent of job %s: %w", child, err)
	}
	cs.add(parent, job.StatusTranscribing, job.StatusFailed)
	return cancelChunks(ctx, tx, cs, parent, "another part of the audio failed")
}

// cancelChunks cancels the unfinished chunks of parent; a transcribing one
// is asked to stop through its holder's heartbeat.
func cancelChunks(ctx context.Context, tx sqldb.Tx, cs *changes, parent, why string) error {
	rows, err := tx.Query(ctx, `
		UPDATE jobs SET status = $2, error_code = $3, error_message = $4,
			cancel_requested = status = 'transcribing',
			lease_expires_at = CASE WHEN status = 'transcribing' THEN lease_expires_at END,
			finished_at = now(), updated_at = now()
		WHERE parent_id = $1 AND status = ANY($5)
		RETURNING id::text, cancel_requested`, parent, string(job.StatusCancelled), job.CodeCancelled, why,
		froms(job.StatusCancelled, job.StatusReady, job.StatusTranscribing))
	type cancelled struct {
		id   string
		held bool // it was transcribing: cancel_requested says so
	}
	chunks, err := sqldb.Collect(rows, err, func(r sqldb.Row) (c cancelled, err error) { return c, r.Scan(&c.id, &c.held) })
	if err != nil {
		return fmt.Errorf("cancel the chunks of job %s: %w", parent, err)
	}
	for _, c := range chunks {
		from := job.StatusReady
		if c.held {
			from = job.StatusTranscribing
		}
		cs.add(c.id, from, job.StatusCancelled)
	}
	return nil
}

// CancelChunks cancels the unfinished chunks of a cancelled parent; their
// holders hear of it through the changes reported.
func (s *Store) CancelChunks(ctx context.Context, parent string) error {
	return s.changeTx(ctx, "cancel the chunks of job "+parent, func(tx sqldb.Tx, cs *changes) error {
		return cancelChunks(ctx, tx, cs, parent, "cancelled by the user")
	})
}
