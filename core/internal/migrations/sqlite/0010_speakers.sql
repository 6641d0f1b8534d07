-- PostgreSQL's 0021: speaker labels asked for on a job, the names its owner
-- gave them (a JSON object), and who speaks each segment.
ALTER TABLE jobs ADD COLUMN speakers int NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN min_speakers int NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN max_speakers int NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN speaker_names text NOT NULL DEFAULT '{}';
ALTER TABLE segments ADD COLUMN speaker text NOT NULL DEFAULT '';
