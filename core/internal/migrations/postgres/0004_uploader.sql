-- Who published the media (yt-dlp's uploader or channel), shown with the title.
ALTER TABLE jobs ADD COLUMN media_uploader text NOT NULL DEFAULT '';
