-- Accounts: quotas, the usage ledger, notifications, the GPU fleet and admin
-- dashboard sessions.

-- Quotas. NULL on a plan: unlimited; on a user: the plan's (0: unlimited).
ALTER TABLE plans
    ADD COLUMN monthly_minutes int CHECK (monthly_minutes > 0),
    ADD COLUMN max_concurrent  int CHECK (max_concurrent > 0);

-- Per-user overrides and where to tell the user that a job ended. The
-- webhook secret signs every delivery (Standard Webhooks: "whsec_" and the
-- base64 of the HMAC key); gen_random_uuid draws from the server's strong
-- random source, so the default is a fine secret.
ALTER TABLE users
    ADD COLUMN monthly_minutes int CHECK (monthly_minutes >= 0),
    ADD COLUMN max_concurrent  int CHECK (max_concurrent >= 0),
    ADD COLUMN webhook_url     text NOT NULL DEFAULT '',
    ADD COLUMN webhook_secret  text NOT NULL DEFAULT 'whsec_' || encode(sha256((gen_random_uuid()::text || gen_random_uuid()::text)::bytea), 'base64'),
    ADD COLUMN email           text NOT NULL DEFAULT '';

ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '';
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

-- A job's own webhook, over the user's default.
ALTER TABLE jobs ADD COLUMN webhook_url text NOT NULL DEFAULT '';
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC) WHERE parent_id IS NULL;
CREATE INDEX jobs_user_active ON jobs (user_id) WHERE status IN ('queued', 'downloading', 'ready', 'transcribing') AND parent_id IS NULL;

-- The usage ledger: one row per job that succeeded, with the audio it
-- transcribed, in the UTC month it finished. It outlives the job (a purge
-- does not refund) and is written by a trigger, so every way a job can
-- succeed — transcription, captions, the transcript cache, stitched chunks —
-- settles exactly once, in the transaction that made it succeed.
CREATE TABLE usage_ledger (
    job_id   uuid PRIMARY KEY,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month    date NOT NULL,
    audio_ms bigint NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_ledger_user_month ON usage_ledger (user_id, month);

-- The notification outbox: written by a trigger in the transaction that
-- finishes a job, delivered by core's notifier with retries.
CREATE TABLE notifications (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target          text NOT NULL, -- URL or address
    event           text NOT NULL, -- job.succeeded, job.failed, job.cancelled
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_job ON notifications (job_id, created_at);

-- The delivery log: every attempt and what the target answered.
CREATE TABLE notification_attempts (
    notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now(),
    status_code     int NOT NULL DEFAULT 0,
    error           text NOT NULL DEFAULT '',
    duration_ms     int NOT NULL DEFAULT 0
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, at);

CREATE FUNCTION jobs_finished() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    u users%ROWTYPE;
    hook text;
BEGIN
    IF NEW.parent_id IS NOT NULL THEN
        RETURN NEW; -- chunks: their parent settles and notifies
    END IF;
    IF NEW.status = 'succeeded' THEN
        INSERT INTO usage_ledger (job_id, user_id, month, audio_ms)
        VALUES (NEW.id, NEW.user_id, date_trunc('month', now() AT TIME ZONE 'UTC')::date, NEW.media_duration_ms)
        ON CONFLICT (job_id) DO NOTHING;
    END IF;
    SELECT * INTO u FROM users WHERE id = NEW.user_id;
    hook := COALESCE(NULLIF(NEW.webhook_url, ''), u.webhook_url);
    IF hook <> '' THEN
        INSERT INTO notifications (job_id, user_id, channel, target, event)
        VALUES (NEW.id, NEW.user_id, 'webhook', hook, 'job.' || NEW.status);
    END IF;
    IF u.email <> '' THEN
        INSERT INTO notifications (job_id, user_id, channel, target, event)
        VALUES (NEW.id, NEW.user_id, 'email', u.email, 'job.' || NEW.status);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_finished AFTER UPDATE OF status ON jobs FOR EACH ROW
    WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION jobs_finished();

-- The GPU fleet as core sees it: every node that has called in.
CREATE TABLE agents (
    node_id    text PRIMARY KEY,
    engines    text[] NOT NULL DEFAULT '{}',
    models     text[] NOT NULL DEFAULT '{}',
    version    text NOT NULL DEFAULT '',
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now()
);

-- Admin dashboard sign-ins: the cookie holds the id, the table its hash.
CREATE TABLE admin_sessions (
    id_hash    bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_id     uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX audit_log_at ON audit_log (at DESC);
