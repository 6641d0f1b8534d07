package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// Revision is one revision of a job's transcript: 0 is the machine's (the
// segments of the job's epoch), every later one an edit its owner saved.
type Revision struct {
	Revision     int
	CreatedAt    time.Time
	SegmentCount int
}

// revisionCue is a cue as a revision stores it, in its JSON array.
type revisionCue struct {
	StartMS int64      `json:"start_ms"`
	EndMS   int64      `json:"end_ms"`
	Text    string     `json:"text"`
	Speaker string     `json:"speaker,omitempty"`
	Words   []job.Word `json:"words,omitempty"`
}

// editable loads userID's job id and says why its transcript cannot be
// edited or read as revisions, if it cannot: another user's job is not
// found, an unfinished one has no transcript yet (job_not_finished), a
// failed one none at all (transcript_not_ready), an expired one none any
// more.
func (s *Store) editable(ctx context.Context, userID, id string) (job.Job, error) {
	j, err := s.GetJob(ctx, userID, id)
	switch {
	case err != nil:
		return j, err
	case j.ParentID != "":
		return job.Job{}, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", id)}
	case !j.Status.Terminal():
		return j, job.Errorf(errcode.JobNotFinished, "job %s is %s: its transcript can be edited once it has finished", j.ID, j.Status)
	case j.Status == job.StatusFailed:
		// As reading its transcript and sharing it answer.
		return j, job.Errorf(job.CodeNotReady, "job %s failed: it has no transcript to edit", j.ID)
	case j.TranscriptExpired:
		return j, job.Errorf(job.CodeExpired, "job %s's transcript was deleted when its retention period ended", j.ID)
	}
	return j, nil
}

// SaveRevision stores segs as the next revision of userID's finished job id,
// if base is still its latest revision (a compare-and-set: of concurrent
// saves from the same base exactly one wins, the others get
// revision_conflict naming the latest). names, when not nil, replace the
// names of the job's speakers in the same transaction (as SetSpeakerNames).
// The caller has validated segs.
func (s *Store) SaveRevision(ctx context.Context, userID, id string, base int, segs []job.Segment, names map[string]string) (Revision, error) {
	if _, err := s.editable(ctx, userID, id); err != nil {
		return Revision{}, err
	}
	cues := make([]revisionCue, len(segs))
	for i, sg := range segs {
		cues[i] = revisionCue{StartMS: sg.StartMS, EndMS: sg.EndMS, Text: sg.Text, Speaker: sg.Speaker, Words: sg.Words}
	}
	body, err := json.Marshal(cues)
	if err != nil {
		return Revision{}, fmt.Errorf("save a revision of job %s: %w", id, err)
	}
	var namesJSON any // nil: NULL, the names stay
	if names != nil {
		b, err := json.Marshal(names)
		if err != nil {
			return Revision{}, fmt.Errorf("save a revision of job %s: %w", id, err)
		}
		namesJSON = b
	}
	r := Revision{SegmentCount: len(segs)}
	err = s.inTx(ctx, "save a revision of job "+id, func(tx sqldb.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE jobs SET revision = revision + 1, speaker_names = coalesce($4, speaker_names), updated_at = now()
			WHERE id = $1 AND user_id::text = $2 AND revision = $3 AND status = ANY($5) AND NOT transcript_expired AND parent_id IS NULL
			RETURNING revision`, id, userID, base, namesJSON, []string{string(job.StatusSucceeded), string(job.StatusCancelled)}).Scan(&r.Revision)
		if errors.Is(err, sqldb.ErrNoRows) {
			return s.refusedSave(ctx, tx, userID, id, base)
		}
		if err != nil {
			return fmt.Errorf("save a revision of job %s: %w", id, err)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO transcript_revisions (job_id, revision, segments, segment_count)
			VALUES ($1, $2, $3, $4) RETURNING created_at`, id, r.Revision, body, len(segs)).Scan(&r.CreatedAt); err != nil {
			return fmt.Errorf("save revision %d of job %s: %w", r.Revision, id, err)
		}
		return nil
	})
	if err != nil {
		return Revision{}, err
	}
	return r, nil
}

// refusedSave says why a save's compare-and-set matched no job: the job
// changed since editable looked, or the base is not the latest revision.
func (s *Store) refusedSave(ctx context.Context, tx sqldb.Tx, userID, id string, base int) error {
	var latest int
	err := tx.QueryRow(ctx, `SELECT revision FROM jobs WHERE id = $1 AND user_id::text = $2`, id, userID).Scan(&latest)
	if errors.Is(err, sqldb.ErrNoRows) {
		return &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", id)}
	}
	if err != nil {
		return fmt.Errorf("save a revision of job %s: %w", id, err)
	}
	if latest == base {
		// Same revision, so the job itself changed: its transcript expired.
		_, err := s.editable(ctx, userID, id)
		if err == nil {
			err = job.Errorf(job.CodeConflict, "job %s changed while the revision was saved; save again", id)
		}
		return err
	}
	return job.Errorf(errcode.RevisionConflict,
		"the latest revision of job %s is %d, not %d: reload it, apply the edit again and save with base_revision %d", id, latest, base, latest)
}

// RevisionSegments returns revision rev of the transcript of job (whose
// owner the caller has checked, with GetJob or editable): the machine's
// segments for 0 (at epoch), else the saved cues. A revision the job does
// not have is revision_not_found.
func (s *Store) RevisionSegments(ctx context.Context, j job.Job, rev int) ([]job.Segment, error) {
	if rev == 0 {
		return s.Segments(ctx, j.ID, j.Epoch, -1)
	}
	var body []byte
	err := s.db.QueryRow(ctx, `SELECT segments FROM transcript_revisions WHERE job_id = $1 AND revision = $2`, j.ID, rev).Scan(&body)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, job.Errorf(errcode.RevisionNotFound, "job %s has no revision %d; its latest is %d", j.ID, rev, j.Revision)
	}
	if err != nil {
		return nil, fmt.Errorf("read revision %d of job %s: %w", rev, j.ID, err)
	}
	var cues []revisionCue
	if err := json.Unmarshal(body, &cues); err != nil {
		return nil, fmt.Errorf("decode revision %d of job %s: %w", rev, j.ID, err)
	}
	segs := make([]job.Segment, len(cues))
	for i, c := range cues {
		segs[i] = job.Segment{Seq: i, StartMS: c.StartMS, EndMS: c.EndMS, Text: c.Text, Speaker: c.Speaker, Words: c.Words}
	}
	return segs, nil
}

// ListRevisions lists the revisions of userID's finished job id, oldest
// first, starting with the machine's (revision 0, made when the job
// finished).
func (s *Store) ListRevisions(ctx context.Context, userID, id string) ([]Revision, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("list revisions of job %q: %w", id, job.ErrNotFound)
	}
	j, err := s.editable(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	first := Revision{Revision: 0, CreatedAt: j.FinishedAt}
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM segments WHERE job_id = $1 AND epoch = $2`, j.ID, j.Epoch).Scan(&first.SegmentCount); err != nil {
		return nil, fmt.Errorf("count the segments of job %s: %w", id, err)
	}
	rows, err := s.db.Query(ctx, `SELECT revision, created_at, segment_count FROM transcript_revisions
		WHERE job_id = $1 ORDER BY revision`, j.ID)
	revs, err := sqldb.Collect(rows, err, func(r sqldb.Row) (Revision, error) {
		var v Revision
		return v, r.Scan(&v.Revision, &v.CreatedAt, &v.SegmentCount)
	})
	if err != nil {
		return nil, fmt.Errorf("list revisions of job %s: %w", id, err)
	}
	return append([]Revision{first}, revs...), nil
}
