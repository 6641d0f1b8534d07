-- PostgreSQL's 0015: what the site says of a job's media.
ALTER TABLE jobs ADD COLUMN media_site text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_site_id text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_upload_date text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_thumbnail text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_webpage_url text NOT NULL DEFAULT '';
