-- Resumable uploads are staged in the blob store (core/internal/uploads):
-- received is how many bytes are safely there, and hash_state the SHA-256
-- of exactly those bytes, so whichever replica takes the next PATCH goes on
-- hashing where the last one stopped and the finished file gets its content
-- key without being read again.
ALTER TABLE uploads ADD COLUMN hash_state BYTEA;
