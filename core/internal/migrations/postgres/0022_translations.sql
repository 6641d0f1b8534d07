-- Translations of finished transcripts (core/internal/translate,
-- docs/translation.md): one row per job and target language, queued by the
-- API and run by core's translation worker under a lease, so a core that
-- dies leaves the translation to another (or to itself, restarted). texts is
-- the JSON array of the translated cue texts, one per segment, in order.
-- source_hash (the transcript's texts and language), language and
-- translator are the cache key: the same transcript is translated once.
CREATE TABLE translations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    language         text NOT NULL CHECK (length(language) BETWEEN 2 AND 10),
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    translator       text NOT NULL DEFAULT '',
    source_hash      text NOT NULL DEFAULT '',
    texts            text,
    characters       bigint NOT NULL DEFAULT 0,
    cached           boolean NOT NULL DEFAULT false,
    attempt          int NOT NULL DEFAULT 0,
    lease_owner      text NOT NULL DEFAULT '',
    lease_expires_at timestamptz,
    error_code       text NOT NULL DEFAULT '',
    error_message    text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (job_id, language)
);
CREATE INDEX translations_due ON translations (created_at) WHERE state IN ('queued', 'running');
CREATE INDEX translations_cache ON translations (source_hash, language, translator) WHERE state = 'succeeded';

-- What translations cost, per user and UTC month: written when a
-- translation succeeds without the cache, and kept when its job is purged
-- (a purge does not refund), like usage_ledger.
CREATE TABLE translation_ledger (
    translation_id uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month          date NOT NULL,
    characters     bigint NOT NULL,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX translation_ledger_user_month ON translation_ledger (user_id, month);

-- The monthly translation quota of a plan, in characters; NULL: unlimited.
ALTER TABLE plans ADD COLUMN monthly_translation_chars int CHECK (monthly_translation_chars > 0);
