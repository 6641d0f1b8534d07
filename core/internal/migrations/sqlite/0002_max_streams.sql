-- PostgreSQL's 0013: how many event streams one API key may hold open at once
-- on one edge. NULL: the edge's default (ytcaption-edge --max-streams).
ALTER TABLE plans ADD COLUMN max_streams int CHECK (max_streams > 0);
