-- Batches: one request for many videos — a playlist or channel that core
-- enumerates with yt-dlp, or a list of URLs. Each entry becomes an ordinary
-- job (jobs.batch_id); the batch keeps the request (the children's options,
-- the bounds of the enumeration) and its own lifecycle:
--   enumerating -> running -> done, or failed (enumeration failed with no
--   children), or cancelled (DELETE: what was left is cancelled).
-- Enumeration is leased like a job (lease_owner, lease_expires_at, attempt)
-- so a core that dies mid-enumeration is replaced by another that enumerates
-- again; (batch_id, batch_key) is unique, so the second pass adds only what
-- the first did not. Counts of children by state are read from jobs, never
-- kept here, so they cannot drift.
CREATE TABLE batches (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status           text NOT NULL CHECK (status IN ('enumerating', 'running', 'done', 'failed', 'cancelled')),
    -- The playlist or channel as the user gave it and as yt-dlp gets it;
    -- 'list' for a list of URLs.
    url              text NOT NULL,
    canonical_url    text NOT NULL,
    max_items        int NOT NULL CHECK (max_items BETWEEN 1 AND 1000),
    item_order       text NOT NULL CHECK (item_order IN ('playlist', 'newest')),
    -- YYYYMMDD bounds on the entries' upload dates, inclusive; '' is open.
    after_date       text NOT NULL DEFAULT '',
    before_date      text NOT NULL DEFAULT '',
    -- The children's options (CreateJob's).
    language         text NOT NULL DEFAULT 'auto',
    engine           text NOT NULL DEFAULT '',
    model            text NOT NULL DEFAULT '',
    source           text NOT NULL DEFAULT 'auto',
    task             text NOT NULL DEFAULT 'transcribe',
    prompt           text NOT NULL DEFAULT '',
    webhook_url      text NOT NULL DEFAULT '',
    -- What enumeration found and what it left out (past max_items, outside
    -- the dates, not a URL core takes).
    entries          int NOT NULL DEFAULT 0,
    skipped          int NOT NULL DEFAULT 0,
    idempotency_key  text NOT NULL DEFAULT '',
    fingerprint      bytea,
    lease_owner      text NOT NULL DEFAULT '',
    lease_expires_at timestamptz,
    attempt          int NOT NULL DEFAULT 0,
    error_code       text NOT NULL DEFAULT '',
    error_message    text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    enumerated_at    timestamptz,
    finished_at      timestamptz
);
CREATE INDEX batches_user_created ON batches (user_id, created_at DESC, id DESC);
CREATE INDEX batches_enumerating ON batches (created_at) WHERE status = 'enumerating';
CREATE INDEX batches_running ON batches (created_at) WHERE status = 'running';
CREATE UNIQUE INDEX batches_idempotency ON batches (user_id, idempotency_key) WHERE idempotency_key <> '';

-- A child knows its batch, its entry key (the canonical URL: the same video
-- twice in a playlist is one child) and its place in the batch.
ALTER TABLE jobs ADD COLUMN batch_id uuid REFERENCES batches (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD COLUMN batch_key text;
ALTER TABLE jobs ADD COLUMN batch_index int NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX jobs_batch_entry ON jobs (batch_id, batch_key) WHERE batch_id IS NOT NULL;
