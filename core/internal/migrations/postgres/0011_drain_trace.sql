-- IF NOT EXISTS: development databases may have these columns from a draft
-- of 0010 that carried them before it was split.
-- A drained gpu-node is handed no new job; it finishes what it holds.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS draining boolean NOT NULL DEFAULT false;

-- The W3C traceparent of the request that created a job, so the gpu-node's
-- work on it joins that trace ('' when tracing is off).
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS trace_parent text NOT NULL DEFAULT '';
