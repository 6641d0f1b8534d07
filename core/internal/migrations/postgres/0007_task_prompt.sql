-- What the engine is asked to do ("translate": into English text) and a prompt
-- to guide it (spellings, context), for engines that take one.
ALTER TABLE jobs
    ADD COLUMN task text NOT NULL DEFAULT 'transcribe' CHECK (task IN ('transcribe', 'translate')),
    ADD COLUMN prompt text NOT NULL DEFAULT '';
