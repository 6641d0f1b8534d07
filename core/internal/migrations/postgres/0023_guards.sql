-- PostgreSQL's 0023: a job's vocabulary (a JSON array of terms spelled as
-- given) and its hallucination guards — whether each ran, and how many
-- segments each removed. Jobs made before the guards existed ran without
-- them; new jobs have both unless they turn them off.
ALTER TABLE jobs
    ADD COLUMN vocabulary jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN silence_guard boolean NOT NULL DEFAULT false,
    ADD COLUMN repetition_guard boolean NOT NULL DEFAULT false,
    ADD COLUMN silence_dropped int NOT NULL DEFAULT 0,
    ADD COLUMN repetition_dropped int NOT NULL DEFAULT 0,
    ADD COLUMN repetition_trimmed int NOT NULL DEFAULT 0;
ALTER TABLE jobs ALTER COLUMN silence_guard SET DEFAULT true, ALTER COLUMN repetition_guard SET DEFAULT true;
