-- What the site says of a job's media (yt-dlp's info JSON): the site (its
-- extractor key, lower-case), the site's id of the video, the day it was
-- published (YYYY-MM-DD), a thumbnail URL and the video's page. Empty for
-- direct files and uploads. Text, not date: the value is shown, never
-- computed with, and SQLite has no date type to match.
ALTER TABLE jobs ADD COLUMN media_site text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_site_id text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_upload_date text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_thumbnail text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN media_webpage_url text NOT NULL DEFAULT '';
