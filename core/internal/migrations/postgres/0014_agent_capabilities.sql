-- What each engine on a gpu-node says it can do (engines.Caps as JSON: name,
-- models, languages, translate, prompt), as the node last advertised it.
-- Core keeps no table of engines: it refuses at creation a job no node seen
-- lately could serve by these. A node of the previous version sends none;
-- core records its engines as transcribing any language without a prompt.
ALTER TABLE agents ADD COLUMN capabilities jsonb NOT NULL DEFAULT '[]';
