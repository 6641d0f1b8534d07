-- Share links (docs/editing.md): a finished job's transcript readable by
-- anybody holding the link's token, without an API key, until the link
-- expires or its owner revokes it. Only the token's SHA-256 is kept
-- (token_hash), so the table opens no link. revision pins the transcript's
-- revision the link shows; NULL: whichever is latest when it is opened.
-- Deleting the job (or its user) deletes its links.
CREATE TABLE shares (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id     uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    revision   int CHECK (revision >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX shares_job ON shares (job_id, created_at);
