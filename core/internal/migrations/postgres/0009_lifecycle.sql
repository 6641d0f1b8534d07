-- Data lifecycle. Blobs to delete — expired audio, purged jobs' files — are
-- queued here in the same transaction that stops rows referring to them; the
-- sweeper deletes them and notes when. A blob stored again since it was
-- queued (content-addressed audio a new job needs) is kept.
CREATE TABLE blob_deletions (
    key          text PRIMARY KEY,
    reason       text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX blob_deletions_pending ON blob_deletions (requested_at) WHERE deleted_at IS NULL;

-- What each sweep did.
CREATE TABLE sweeps (
    at          timestamptz NOT NULL DEFAULT now(),
    cutoff      timestamptz NOT NULL,
    audio       int NOT NULL,
    transcripts int NOT NULL,
    jobs        int NOT NULL,
    blobs       int NOT NULL
);

ALTER TABLE jobs
    ADD COLUMN blobs_expired boolean NOT NULL DEFAULT false,     -- its audio (and upload) past retention, deleted
    ADD COLUMN transcript_expired boolean NOT NULL DEFAULT false; -- its segments past retention, deleted

-- Every change an operator makes, by whom.
CREATE TABLE audit_log (
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'
);
