-- SQLite's 0014, as PostgreSQL's 0025: share links, by the SHA-256 of their
-- tokens.
CREATE TABLE shares (
    id         text PRIMARY KEY DEFAULT (gen_random_uuid()),
    job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash blob NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    revision   int CHECK (revision >= 0),
    created_at int NOT NULL DEFAULT (now()),
    expires_at int NOT NULL,
    revoked_at int
);
CREATE INDEX shares_job ON shares (job_id, created_at);
