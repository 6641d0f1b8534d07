-- Speaker labels. A job may ask for them (speakers, with optional bounds on
-- how many; 0: the engine decides), and its owner may name them afterwards
-- (speaker_names: a JSON object, label → name, applied when rendering). A
-- segment records who speaks it ("Speaker 1", …; '' when unknown); a word's
-- speaker rides in its JSON with the rest of the word.
ALTER TABLE jobs
    ADD COLUMN speakers boolean NOT NULL DEFAULT false,
    ADD COLUMN min_speakers int NOT NULL DEFAULT 0,
    ADD COLUMN max_speakers int NOT NULL DEFAULT 0,
    ADD COLUMN speaker_names jsonb NOT NULL DEFAULT '{}';
ALTER TABLE segments ADD COLUMN speaker text NOT NULL DEFAULT '';
