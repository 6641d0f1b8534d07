-- Resumable uploads (tus 1.0, core/internal/uploads): one row per upload,
-- written before its first byte is accepted, so ownership, the declared size
-- and the expiry are known to every replica. blob_key is set once the whole
-- file is in the blob store under its content key; until then the upload is
-- unfinished and expires at expires_at (the leader's sweeper removes it).
CREATE TABLE uploads (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    size        bigint NOT NULL CHECK (size >= 0),
    received    bigint NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= size),
    filename    text NOT NULL DEFAULT '' CHECK (length(filename) <= 255),
    blob_key    text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX uploads_expires ON uploads (expires_at);
CREATE INDEX uploads_user ON uploads (user_id);
