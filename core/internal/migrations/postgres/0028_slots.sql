-- PostgreSQL's 0028: a gpu-node's slots (ytcaption-gpu-node --slots), the
-- jobs it transcribes at once, and how many were in its engine at its last
-- poll, for the fleet view and core's slot metrics. A node of the previous
-- version runs one.
ALTER TABLE agents
    ADD COLUMN slots int NOT NULL DEFAULT 1,
    ADD COLUMN slots_busy int NOT NULL DEFAULT 0;
