-- PostgreSQL's 0020: the SHA-256 state of an upload's staged bytes.
ALTER TABLE uploads ADD COLUMN hash_state BLOB;
