-- SQLite's 0012, as PostgreSQL's 0023: a job's vocabulary (a JSON array) and
-- its hallucination guards. SQLite cannot change a column's default, so the
-- columns are added with the new jobs' default (on) and the jobs made
-- before the guards existed, which ran without them, are set off.
ALTER TABLE jobs ADD COLUMN vocabulary text NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN silence_guard int NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN repetition_guard int NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN silence_dropped int NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN repetition_dropped int NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN repetition_trimmed int NOT NULL DEFAULT 0;
UPDATE jobs SET silence_guard = 0, repetition_guard = 0;
