-- Fair claiming (store.claim): a claim walks the users with a runnable job
-- and, per user, probes their next job, how many jobs they hold in the stage
-- and when the stage last served them. Each is an index probe here, so a
-- claim costs a few probes per waiting user however long the queue is.
--
-- The per-user queue indexes replace the global ones (run_after, created_at
-- and run_after, ready_at), which only the claim read: beside them the
-- planner, not knowing that one user owns most of the queue, walked the
-- global order filtering on user_id — thousands of rows per probe.
CREATE INDEX jobs_queued_user ON jobs (user_id, run_after, created_at) WHERE status = 'queued';
CREATE INDEX jobs_ready_user ON jobs (user_id, run_after, ready_at) WHERE status = 'ready';
DROP INDEX jobs_queued;
DROP INDEX jobs_ready;
CREATE INDEX jobs_downloading_user ON jobs (user_id) WHERE status = 'downloading';
CREATE INDEX jobs_transcribing_user ON jobs (user_id) WHERE status = 'transcribing';
CREATE INDEX jobs_user_downloading ON jobs (user_id, downloading_at) WHERE downloading_at IS NOT NULL;
CREATE INDEX jobs_user_transcribing ON jobs (user_id, transcribing_at) WHERE transcribing_at IS NOT NULL;
