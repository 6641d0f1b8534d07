-- PostgreSQL's 0016: cookie files for yt-dlp, added by admins (content is a
-- secret, never returned by the admin API).
CREATE TABLE cookie_files (
    id                text PRIMARY KEY DEFAULT (gen_random_uuid()),
    name              text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    content           blob NOT NULL,
    enabled           int NOT NULL DEFAULT 1,
    created_at        int NOT NULL DEFAULT (now()),
    last_success_at   int,
    last_failure_at   int,
    last_failure_code text NOT NULL DEFAULT ''
);
