-- Users, API keys, jobs and their transcript segments.

CREATE TABLE users (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE,
    role       text NOT NULL CHECK (role IN ('admin', 'user')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored as SHA-256 hashes; the prefix is kept for display only.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    prefix     text NOT NULL,
    hash       bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE jobs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status            text NOT NULL CHECK (status IN ('queued', 'downloading', 'ready', 'transcribing', 'succeeded', 'failed', 'cancelled')),
    url               text NOT NULL,
    canonical_url     text NOT NULL,
    source_kind       text NOT NULL,
    language          text NOT NULL DEFAULT 'auto',
    engine            text NOT NULL DEFAULT '',
    model             text NOT NULL DEFAULT '',
    detected_language text NOT NULL DEFAULT '',
    progress          double precision NOT NULL DEFAULT 0,
    media_title       text NOT NULL DEFAULT '',
    media_duration_ms bigint NOT NULL DEFAULT 0,
    audio_key         text NOT NULL DEFAULT '',
    -- Fencing: epoch goes up on every claim; lease calls must present the current one.
    epoch             bigint NOT NULL DEFAULT 0,
    lease_owner       text NOT NULL DEFAULT '',
    lease_expires_at  timestamptz,
    -- Claims in the current stage; reset when the job moves to the next stage.
    attempt           int NOT NULL DEFAULT 0,
    max_attempts      int NOT NULL DEFAULT 3,
    run_after         timestamptz NOT NULL DEFAULT now(),
    cancel_requested  boolean NOT NULL DEFAULT false,
    error_code        text NOT NULL DEFAULT '',
    error_message     text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    downloading_at    timestamptz,
    ready_at          timestamptz,
    transcribing_at   timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_user_created ON jobs (user_id, created_at DESC, id DESC);
-- Small partial indexes keep the claim queries cheap however many finished jobs pile up.
CREATE INDEX jobs_queued ON jobs (run_after, created_at) WHERE status = 'queued';
CREATE INDEX jobs_ready ON jobs (run_after, ready_at) WHERE status = 'ready';
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status IN ('downloading', 'transcribing');

-- Segments are keyed by the lease epoch that produced them: a retried push is an
-- upsert, and a stale attempt's segments never mix with the current one's.
CREATE TABLE segments (
    job_id   uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch    bigint NOT NULL,
    seq      int NOT NULL,
    start_ms bigint NOT NULL,
    end_ms   bigint NOT NULL,
    text     text NOT NULL,
    words    jsonb,
    PRIMARY KEY (job_id, epoch, seq)
);

-- One row per failed or expired attempt, so no attempt's error is lost.
CREATE TABLE job_attempts (
    job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt       int NOT NULL,
    epoch         bigint NOT NULL,
    stage         text NOT NULL,
    owner         text NOT NULL,
    error_code    text NOT NULL,
    error_message text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, at);
