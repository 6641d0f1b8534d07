-- PostgreSQL's 0019: the per-user indexes fair claiming probes, replacing the
-- global queue orders only the claim read.
CREATE INDEX jobs_queued_user ON jobs (user_id, run_after, created_at) WHERE status = 'queued';
CREATE INDEX jobs_ready_user ON jobs (user_id, run_after, ready_at) WHERE status = 'ready';
DROP INDEX jobs_queued;
DROP INDEX jobs_ready;
CREATE INDEX jobs_downloading_user ON jobs (user_id) WHERE status = 'downloading';
CREATE INDEX jobs_transcribing_user ON jobs (user_id) WHERE status = 'transcribing';
CREATE INDEX jobs_user_downloading ON jobs (user_id, downloading_at) WHERE downloading_at IS NOT NULL;
CREATE INDEX jobs_user_transcribing ON jobs (user_id, transcribing_at) WHERE transcribing_at IS NOT NULL;
