-- Where a job's transcript may come from (as asked) and where it came from.
ALTER TABLE jobs
    ADD COLUMN source text NOT NULL DEFAULT 'auto' CHECK (source IN ('auto', 'captions', 'asr')),
    ADD COLUMN transcribed_from text NOT NULL DEFAULT '';
