// Plain words for what the API says: job stages, and each failure code
// (internal/errcode) with what to do about it.

export const stages = {
  queued: "Waiting for its turn",
  fetching: "Downloading the media",
  fetched: "Downloaded; waiting for a transcriber",
  transcribing: "Transcribing",
  succeeded: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

export const terminal = (s) => ["succeeded", "failed", "cancelled"].includes(s);

const failures = {
  invalid_url: ["That link is not one we can use.", "Check it is a full http(s) link to a video or an audio file."],
  source_not_found: ["The link leads nowhere: the site says the page does not exist.", "Open the link in your browser to check it, then try again with the right one."],
  source_forbidden: ["The site refused to give us the media, or its address is not allowed.", "Use a public link, or download the file yourself and drop it here."],
  download_failed: ["The download broke off.", "Try again in a few minutes; if it keeps failing, download the file and drop it here."],
  media_too_large: ["The file is larger than this server accepts.", "Cut it into shorter parts, or ask your administrator for a higher limit."],
  empty_media: ["The file holds no sound to transcribe.", "Check the file plays, and that it has an audio track."],
  not_media: ["That is not a video or audio file we can read.", "Convert it to a common format (MP3, WAV, MP4, OGG) and try again."],
  too_long: ["The recording is longer than this server accepts.", "Cut it into shorter parts and caption each."],
  transcode_failed: ["The audio could not be converted for transcription.", "Convert it to WAV or MP3 yourself and drop the new file here."],
  audio_unavailable: ["The transcriber could not fetch the stored audio.", "Try again; if it keeps failing, tell your administrator."],
  engine_failed: ["The speech engine failed on this recording.", "Try again; a different language setting may help."],
  attempts_exhausted: ["Every attempt failed.", "Try again later; if it keeps failing, tell your administrator."],
  cancelled: ["You cancelled this job.", "Start it again from New captions if you need it."],
  captions_unavailable: ["The video has no captions in that language.", "Start again with Source set to Transcribe the audio."],
  video_unavailable: ["The video has been removed, or never existed.", "Check the link in your browser."],
  geo_blocked: ["The video is not available in this server's country.", "Download it where you can watch it and drop the file here."],
  private_video: ["The video is private.", "Ask its owner to make it public or unlisted, or drop the file here."],
  login_required: ["The site shows this video only to signed-in accounts.", "Download it while signed in and drop the file here."],
  age_restricted: ["The video is age-restricted.", "Download it while signed in and drop the file here."],
  youtube_bot_check: ["YouTube is asking this server to prove it is not a robot.", "Try again later, or download the video and drop the file here."],
  youtube_rate_limited: ["YouTube asked us to slow down.", "Wait an hour and try again."],
  live_stream_not_supported: ["That is a live or upcoming stream: it has no end to transcribe yet.", "Try again once the stream is over."],
  quota_exceeded: ["Your plan's minutes or jobs at once are used up.", "Wait for running jobs to finish, or for next month; or ask your administrator."],
  unsupported_option: ["No transcriber here can do that combination of language and options.", "Pick another language, or leave it on Detect."],
  rate_limited: ["Too many requests in a short time.", "Wait a moment and try again."],
  unavailable: ["The service is busy or restarting.", "Try again in a moment."],
  internal: ["Something went wrong on our side.", "Try again; if it keeps happening, tell your administrator."],
};

// explain returns [what happened, what to do] for an error code, and the
// server's own message when the code is new to this page.
export function explain(code, message) {
  return failures[code] || [message || "It did not work.", "Try again; if it keeps happening, tell your administrator."];
}
