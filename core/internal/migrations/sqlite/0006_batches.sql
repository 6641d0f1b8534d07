-- PostgreSQL's 0017: batches (a playlist, a channel or a list of URLs) and
-- their children's batch_id, entry key and place.
CREATE TABLE batches (
    id               text PRIMARY KEY DEFAULT (gen_random_uuid()),
    user_id          text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status           text NOT NULL CHECK (status IN ('enumerating', 'running', 'done', 'failed', 'cancelled')),
    url              text NOT NULL,
    canonical_url    text NOT NULL,
    max_items        int NOT NULL CHECK (max_items BETWEEN 1 AND 1000),
    item_order       text NOT NULL CHECK (item_order IN ('playlist', 'newest')),
    after_date       text NOT NULL DEFAULT '',
    before_date      text NOT NULL DEFAULT '',
    language         text NOT NULL DEFAULT 'auto',
    engine           text NOT NULL DEFAULT '',
    model            text NOT NULL DEFAULT '',
    source           text NOT NULL DEFAULT 'auto',
    task             text NOT NULL DEFAULT 'transcribe',
    prompt           text NOT NULL DEFAULT '',
    webhook_url      text NOT NULL DEFAULT '',
    entries          int NOT NULL DEFAULT 0,
    skipped          int NOT NULL DEFAULT 0,
    idempotency_key  text NOT NULL DEFAULT '',
    fingerprint      blob,
    lease_owner      text NOT NULL DEFAULT '',
    lease_expires_at int,
    attempt          int NOT NULL DEFAULT 0,
    error_code       text NOT NULL DEFAULT '',
    error_message    text NOT NULL DEFAULT '',
    created_at       int NOT NULL DEFAULT (now()),
    enumerated_at    int,
    finished_at      int
);
CREATE INDEX batches_user_created ON batches (user_id, created_at DESC, id DESC);
CREATE INDEX batches_enumerating ON batches (created_at) WHERE status = 'enumerating';
CREATE INDEX batches_running ON batches (created_at) WHERE status = 'running';
CREATE UNIQUE INDEX batches_idempotency ON batches (user_id, idempotency_key) WHERE idempotency_key <> '';

ALTER TABLE jobs ADD COLUMN batch_id text REFERENCES batches (id) ON DELETE CASCADE;
ALTER TABLE jobs ADD COLUMN batch_key text;
ALTER TABLE jobs ADD COLUMN batch_index int NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX jobs_batch_entry ON jobs (batch_id, batch_key) WHERE batch_id IS NOT NULL;
