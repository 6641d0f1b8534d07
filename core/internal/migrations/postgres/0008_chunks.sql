-- Long audio is transcribed in chunks cut at silences: each chunk is a child
-- job (ready for any idle gpu-node, with the usual leases and fencing) whose
-- segments are stitched into the parent, shifted by the chunk's offset.
ALTER TABLE jobs
    ADD COLUMN parent_id uuid REFERENCES jobs (id) ON DELETE CASCADE,
    ADD COLUMN chunk_index int NOT NULL DEFAULT 0,
    ADD COLUMN chunk_offset_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN chunks int NOT NULL DEFAULT 0; -- on a parent: how many children

CREATE INDEX jobs_parent ON jobs (parent_id, chunk_index) WHERE parent_id IS NOT NULL;
