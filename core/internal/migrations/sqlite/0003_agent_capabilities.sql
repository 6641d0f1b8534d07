-- PostgreSQL's 0014: what each engine on a gpu-node says it can do
-- (engines.Caps as JSON), as the node last advertised it.
ALTER TABLE agents ADD COLUMN capabilities text NOT NULL DEFAULT '[]';
