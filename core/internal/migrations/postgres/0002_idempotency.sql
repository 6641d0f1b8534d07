-- Idempotency keys: the durable half of Idempotency-Key. The row is written in
-- the same transaction as the job it created, so no retry, Redis flush or
-- race between edges can create a second job for one key.
CREATE TABLE idempotency_keys (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL,
    -- SHA-256 of the request's parameters: the same key with other parameters is refused.
    fingerprint bytea NOT NULL,
    job_id      uuid REFERENCES jobs (id) ON DELETE CASCADE, -- set in the same transaction, after the job
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
