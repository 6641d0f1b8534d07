-- SQLite's 0017, as PostgreSQL's 0028: a gpu-node's slots and how many were
-- busy at its last poll.
ALTER TABLE agents ADD COLUMN slots int NOT NULL DEFAULT 1;
ALTER TABLE agents ADD COLUMN slots_busy int NOT NULL DEFAULT 0;
