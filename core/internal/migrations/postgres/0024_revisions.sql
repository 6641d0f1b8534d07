-- Transcript revisions: the owner's edits of a finished job's transcript.
-- Revision 0 is the machine's transcript (the segments table), never
-- changed; each save adds revision N+1 holding the whole edited cue list as
-- a JSON array. jobs.revision is the latest revision: a save is a
-- compare-and-set on it, so of two saves from the same base one wins.
-- Revisions belong to the job, never to the transcript cache: a job that
-- reuses another's transcript copies its segments, not its revisions.
ALTER TABLE jobs ADD COLUMN revision int NOT NULL DEFAULT 0;
CREATE TABLE transcript_revisions (
    job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    revision      int NOT NULL CHECK (revision > 0),
    segments      jsonb NOT NULL,
    segment_count int NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, revision)
);
