-- PostgreSQL's 0018: resumable uploads (tus 1.0), one row per upload.
CREATE TABLE uploads (
    id          text PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    size        int NOT NULL CHECK (size >= 0),
    received    int NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= size),
    filename    text NOT NULL DEFAULT '' CHECK (length(filename) <= 255),
    blob_key    text NOT NULL DEFAULT '',
    created_at  int NOT NULL DEFAULT (now()),
    expires_at  int NOT NULL,
    finished_at int
);
CREATE INDEX uploads_expires ON uploads (expires_at);
CREATE INDEX uploads_user ON uploads (user_id);
