-- PostgreSQL's 0022: translations of finished transcripts, their ledger and
-- the plans' monthly translation quota.
CREATE TABLE translations (
    id               text PRIMARY KEY DEFAULT (gen_random_uuid()),
    job_id           text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_id          text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    language         text NOT NULL CHECK (length(language) BETWEEN 2 AND 10),
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    translator       text NOT NULL DEFAULT '',
    source_hash      text NOT NULL DEFAULT '',
    texts            text,
    characters       int NOT NULL DEFAULT 0,
    cached           int NOT NULL DEFAULT 0,
    attempt          int NOT NULL DEFAULT 0,
    lease_owner      text NOT NULL DEFAULT '',
    lease_expires_at int,
    error_code       text NOT NULL DEFAULT '',
    error_message    text NOT NULL DEFAULT '',
    created_at       int NOT NULL DEFAULT (now()),
    finished_at      int,
    UNIQUE (job_id, language)
);
CREATE INDEX translations_due ON translations (created_at) WHERE state IN ('queued', 'running');
CREATE INDEX translations_cache ON translations (source_hash, language, translator) WHERE state = 'succeeded';

CREATE TABLE translation_ledger (
    translation_id text PRIMARY KEY,
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month          int NOT NULL,
    characters     int NOT NULL,
    at             int NOT NULL DEFAULT (now())
);
CREATE INDEX translation_ledger_user_month ON translation_ledger (user_id, month);

ALTER TABLE plans ADD COLUMN monthly_translation_chars int CHECK (monthly_translation_chars > 0);
