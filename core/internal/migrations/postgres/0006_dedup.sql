-- Finding an earlier transcript of the same media with the same options: the
-- transcript cache. Partial, so only succeeded jobs are indexed.
CREATE INDEX jobs_dedup ON jobs (canonical_url, engine, model, language, source, finished_at DESC) WHERE status = 'succeeded';

-- The job whose transcript a cache hit copied; NULL when the job made its own.
ALTER TABLE jobs ADD COLUMN reused_from uuid;
