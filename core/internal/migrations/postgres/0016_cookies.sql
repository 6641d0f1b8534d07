-- Cookie files for yt-dlp, added by admins: the download stage hands them
-- out in turn (core/internal/outbound), one per download, beside the outbound
-- proxies. content is a Netscape cookies file — a signed-in session, so a
-- secret: the admin API and the dashboard never return it. The outcome
-- columns are what the pool last saw through the file; a bot check or a rate
-- limit after the last success means it is resting, on every replica.
CREATE TABLE cookie_files (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    content           bytea NOT NULL,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_success_at   timestamptz,
    last_failure_at   timestamptz,
    last_failure_code text NOT NULL DEFAULT ''
);
