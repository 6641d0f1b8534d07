-- The single-box schema: PostgreSQL's migrations 0001-0012 as one SQLite
-- script. Times are integer microseconds since the epoch (UTC), booleans 0/1,
-- uuids text, arrays JSON text; now(), gen_random_uuid(), month_start() and
-- new_webhook_secret() are functions core registers. A change to the schema
-- is a new migration in both directories.

CREATE TABLE plans (
    name            text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63 AND name NOT GLOB '*[^a-z0-9_-]*' AND substr(name, 1, 1) NOT IN ('-', '_')),
    create_rate     int CHECK (create_rate > 0),
    create_burst    int CHECK (create_burst > 0),
    read_rate       int CHECK (read_rate > 0),
    read_burst      int CHECK (read_burst > 0),
    monthly_minutes int CHECK (monthly_minutes > 0),
    max_concurrent  int CHECK (max_concurrent > 0),
    created_at      int NOT NULL DEFAULT (now()),
    updated_at      int NOT NULL DEFAULT (now())
);
INSERT INTO plans (name) VALUES ('default');

CREATE TABLE users (
    id              text PRIMARY KEY DEFAULT (gen_random_uuid()),
    name            text NOT NULL UNIQUE,
    role            text NOT NULL CHECK (role IN ('admin', 'user')),
    created_at      int NOT NULL DEFAULT (now()),
    plan            text NOT NULL DEFAULT 'default' REFERENCES plans (name),
    monthly_minutes int CHECK (monthly_minutes >= 0),
    max_concurrent  int CHECK (max_concurrent >= 0),
    webhook_url     text NOT NULL DEFAULT '',
    webhook_secret  text NOT NULL DEFAULT (new_webhook_secret()),
    email           text NOT NULL DEFAULT ''
);

CREATE TABLE api_keys (
    id         text PRIMARY KEY DEFAULT (gen_random_uuid()),
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prefix     text NOT NULL,
    hash       blob NOT NULL UNIQUE,
    created_at int NOT NULL DEFAULT (now()),
    revoked_at int,
    name       text NOT NULL DEFAULT ''
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE jobs (
    id                 text PRIMARY KEY DEFAULT (gen_random_uuid()),
    user_id            text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status             text NOT NULL CHECK (status IN ('queued', 'downloading', 'ready', 'transcribing', 'succeeded', 'failed', 'cancelled')),
    url                text NOT NULL,
    canonical_url      text NOT NULL,
    source_kind        text NOT NULL,
    language           text NOT NULL DEFAULT 'auto',
    engine             text NOT NULL DEFAULT '',
    model              text NOT NULL DEFAULT '',
    detected_language  text NOT NULL DEFAULT '',
    progress           real NOT NULL DEFAULT 0,
    media_title        text NOT NULL DEFAULT '',
    media_duration_ms  int NOT NULL DEFAULT 0,
    audio_key          text NOT NULL DEFAULT '',
    epoch              int NOT NULL DEFAULT 0,
    lease_owner        text NOT NULL DEFAULT '',
    lease_expires_at   int,
    attempt            int NOT NULL DEFAULT 0,
    max_attempts       int NOT NULL DEFAULT 3,
    run_after          int NOT NULL DEFAULT (now()),
    cancel_requested   int NOT NULL DEFAULT 0,
    error_code         text NOT NULL DEFAULT '',
    error_message      text NOT NULL DEFAULT '',
    created_at         int NOT NULL DEFAULT (now()),
    downloading_at     int,
    ready_at           int,
    transcribing_at    int,
    finished_at        int,
    updated_at         int NOT NULL DEFAULT (now()),
    media_uploader     text NOT NULL DEFAULT '',
    source             text NOT NULL DEFAULT 'auto' CHECK (source IN ('auto', 'captions', 'asr')),
    transcribed_from   text NOT NULL DEFAULT '',
    reused_from        text,
    task               text NOT NULL DEFAULT 'transcribe' CHECK (task IN ('transcribe', 'translate')),
    prompt             text NOT NULL DEFAULT '',
    parent_id          text REFERENCES jobs (id) ON DELETE CASCADE,
    chunk_index        int NOT NULL DEFAULT 0,
    chunk_offset_ms    int NOT NULL DEFAULT 0,
    chunks             int NOT NULL DEFAULT 0,
    blobs_expired      int NOT NULL DEFAULT 0,
    transcript_expired int NOT NULL DEFAULT 0,
    webhook_url        text NOT NULL DEFAULT '',
    trace_parent       text NOT NULL DEFAULT ''
);
CREATE INDEX jobs_user_created ON jobs (user_id, created_at DESC, id DESC);
CREATE INDEX jobs_queued ON jobs (run_after, created_at) WHERE status = 'queued';
CREATE INDEX jobs_ready ON jobs (run_after, ready_at) WHERE status = 'ready';
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status IN ('downloading', 'transcribing');
CREATE INDEX jobs_dedup ON jobs (canonical_url, engine, model, language, source, finished_at DESC) WHERE status = 'succeeded';
CREATE INDEX jobs_parent ON jobs (parent_id, chunk_index) WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC) WHERE parent_id IS NULL;
CREATE INDEX jobs_user_active ON jobs (user_id) WHERE status IN ('queued', 'downloading', 'ready', 'transcribing') AND parent_id IS NULL;

CREATE TABLE segments (
    job_id   text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch    int NOT NULL,
    seq      int NOT NULL,
    start_ms int NOT NULL,
    end_ms   int NOT NULL,
    text     text NOT NULL,
    words    text,
    PRIMARY KEY (job_id, epoch, seq)
);

CREATE TABLE job_attempts (
    job_id        text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt       int NOT NULL,
    epoch         int NOT NULL,
    stage         text NOT NULL,
    owner         text NOT NULL,
    error_code    text NOT NULL,
    error_message text NOT NULL,
    at            int NOT NULL DEFAULT (now())
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, at);

CREATE TABLE idempotency_keys (
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL,
    fingerprint blob NOT NULL,
    job_id      text REFERENCES jobs (id) ON DELETE CASCADE,
    created_at  int NOT NULL DEFAULT (now()),
    PRIMARY KEY (user_id, key)
);

CREATE TABLE blob_deletions (
    key          text PRIMARY KEY,
    reason       text NOT NULL,
    requested_at int NOT NULL DEFAULT (now()),
    deleted_at   int
);
CREATE INDEX blob_deletions_pending ON blob_deletions (requested_at) WHERE deleted_at IS NULL;

CREATE TABLE sweeps (
    at          int NOT NULL DEFAULT (now()),
    cutoff      int NOT NULL,
    audio       int NOT NULL,
    transcripts int NOT NULL,
    jobs        int NOT NULL,
    blobs       int NOT NULL
);

CREATE TABLE audit_log (
    at     int NOT NULL DEFAULT (now()),
    actor  text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail text NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

CREATE TABLE usage_ledger (
    job_id   text PRIMARY KEY,
    user_id  text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month    int NOT NULL,
    audio_ms int NOT NULL,
    at       int NOT NULL DEFAULT (now())
);
CREATE INDEX usage_ledger_user_month ON usage_ledger (user_id, month);

CREATE TABLE notifications (
    id              text PRIMARY KEY DEFAULT (gen_random_uuid()),
    job_id          text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target          text NOT NULL,
    event           text NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at int NOT NULL DEFAULT (now()),
    created_at      int NOT NULL DEFAULT (now()),
    finished_at     int
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_job ON notifications (job_id, created_at);

CREATE TABLE notification_attempts (
    notification_id text NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at              int NOT NULL DEFAULT (now()),
    status_code     int NOT NULL DEFAULT 0,
    error           text NOT NULL DEFAULT '',
    duration_ms     int NOT NULL DEFAULT 0
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, at);

-- PostgreSQL's jobs_finished trigger, statement for statement: settle the
-- ledger once for a succeeded job and fill the outbox for every finished one
-- (chunks excepted: their parent settles and notifies).
CREATE TRIGGER jobs_finished_ledger AFTER UPDATE OF status ON jobs FOR EACH ROW
    WHEN NEW.status = 'succeeded' AND OLD.status IS NOT NEW.status AND NEW.parent_id IS NULL
BEGIN
    INSERT INTO usage_ledger (job_id, user_id, month, audio_ms)
    VALUES (NEW.id, NEW.user_id, month_start(now()), NEW.media_duration_ms)
    ON CONFLICT (job_id) DO NOTHING;
END;

CREATE TRIGGER jobs_finished_notify AFTER UPDATE OF status ON jobs FOR EACH ROW
    WHEN NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.status IS NOT NEW.status AND NEW.parent_id IS NULL
BEGIN
    INSERT INTO notifications (job_id, user_id, channel, target, event)
    SELECT NEW.id, NEW.user_id, 'webhook', COALESCE(NULLIF(NEW.webhook_url, ''), u.webhook_url), 'job.' || NEW.status
    FROM users u WHERE u.id = NEW.user_id AND COALESCE(NULLIF(NEW.webhook_url, ''), u.webhook_url) <> '';
    INSERT INTO notifications (job_id, user_id, channel, target, event)
    SELECT NEW.id, NEW.user_id, 'email', u.email, 'job.' || NEW.status
    FROM users u WHERE u.id = NEW.user_id AND u.email <> '';
END;

CREATE TABLE agents (
    node_id    text PRIMARY KEY,
    engines    text NOT NULL DEFAULT '[]',
    models     text NOT NULL DEFAULT '[]',
    version    text NOT NULL DEFAULT '',
    first_seen int NOT NULL DEFAULT (now()),
    last_seen  int NOT NULL DEFAULT (now()),
    draining   int NOT NULL DEFAULT 0
);

CREATE TABLE admin_sessions (
    id_hash    blob PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_id     text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at int NOT NULL DEFAULT (now()),
    expires_at int NOT NULL
);
