-- PostgreSQL's 0024: transcript revisions, the owner's edits of a finished
-- job's transcript (revision 0 is the segments table), and the job's latest
-- revision, which a save compares and sets.
ALTER TABLE jobs ADD COLUMN revision int NOT NULL DEFAULT 0;
CREATE TABLE transcript_revisions (
    job_id        text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    revision      int NOT NULL CHECK (revision > 0),
    segments      text NOT NULL,
    segment_count int NOT NULL,
    created_at    int NOT NULL DEFAULT (now()),
    PRIMARY KEY (job_id, revision)
);
