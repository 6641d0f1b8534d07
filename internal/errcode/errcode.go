// Package errcode is the one list of ytcaption's error codes: every code a
// client can meet in an error reply ({"error":{"code":…}}, the Connect
// ErrorDetail) or on a failed job (error_code). The edge, core, the gpu-node
// and the CLI use these constants; core refuses to store a job failure whose
// code is not a job code here, and a test checks the README's lists against
// this one. (The CLI's --json output adds a few codes of its own for what
// happens on the client — usage, network, interrupted, not_an_edge,
// already_finished — documented in its help, never sent by a server.) Codes are part of the public API: clients switch on them, so one
// is never renamed or reused for another meaning.
package errcode

import "net/http"

// Request errors: the call was refused, nothing was stored.
const (
	InvalidURL            = "invalid_url"
	InvalidArgument       = "invalid_argument"
	InvalidJSON           = "invalid_json"
	UnsupportedOption     = "unsupported_option" // no engine (or not the one named) can serve this language, task or prompt
	RequestTooLarge       = "request_too_large"
	UnsupportedEncoding   = "unsupported_encoding" // a Content-Encoding other than identity
	MethodNotAllowed      = "method_not_allowed"
	Unauthorized          = "unauthorized"
	Forbidden             = "forbidden"
	QuotaExceeded         = "quota_exceeded" // the user's monthly minutes or concurrent jobs are used up
	NotFound              = "not_found"
	Conflict              = "conflict"             // the job is not in a state that allows the call
	NotReady              = "transcript_not_ready" // the job has no transcript yet
	Expired               = "transcript_expired"   // the transcript was deleted after the retention period
	RateLimited           = "rate_limited"
	TooManyStreams        = "too_many_streams"
	InvalidIdempotencyKey = "invalid_idempotency_key"
	IdempotencyMismatch   = "idempotency_key_mismatch" // the key was used with other parameters
	IdempotencyInUse      = "idempotency_key_in_use"   // the first request with the key is still running
	IntakePaused          = "intake_paused"            // an operator paused new jobs (Consul KV ytcaption/core/intake)
	LeaseLost             = "lease_lost"               // a gpu-node's epoch is stale or its lease expired
	// Translations (docs/translation.md).
	TranslationUnavailable = "translation_unavailable" // no translator is configured on this server
	TranslationNotReady    = "translation_not_ready"   // the translation asked for is queued or running
	TranslationFailed      = "translation_failed"      // the translation failed (the translator, or the job had no transcript)
	// Transcript revisions and the job's audio (docs/editing.md).
	InvalidTranscript = "invalid_transcript" // an edited transcript breaks a bound; the message names the cue
	RevisionConflict  = "revision_conflict"  // the save's base revision is not the latest any more
	RevisionNotFound  = "revision_not_found" // the job has no such revision
	JobNotFinished    = "job_not_finished"   // the call needs a finished job (an edit, a share)
	AudioNotFound     = "audio_not_found"    // the job's stored audio is gone (retention) or was never stored
	Timeout           = "timeout"
	Unavailable       = "unavailable"
	Internal          = "internal"
	// Share links (docs/editing.md).
	ShareNotFound = "share_not_found" // a share link's token is unknown, malformed, expired or revoked, or its job is gone: one answer for all
	TooManyShares = "too_many_shares" // the job has as many live share links as it may have
)

// Job failures: stored on a failed job as its error_code.
const (
	SourceNotFound    = "source_not_found"   // the URL answered 404/410
	SourceForbidden   = "source_forbidden"   // the URL answered 401/403, or its address is not allowed
	DownloadFailed    = "download_failed"    // network or upstream error while fetching
	MediaTooLarge     = "media_too_large"    // the download passed the size cap
	EmptyMedia        = "empty_media"        // nothing was downloaded, or the audio has no duration
	NotMedia          = "not_media"          // the file has no decodable audio stream
	TooLong           = "too_long"           // the media is longer than the configured maximum
	TranscodeFailed   = "transcode_failed"   // ffmpeg could not normalise audio it could probe
	AudioUnavailable  = "audio_unavailable"  // the gpu-node could not fetch the stored audio
	EngineFailed      = "engine_failed"      // the speech engine failed
	AttemptsExhausted = "attempts_exhausted" // every attempt failed retryably or lost its lease
	Cancelled         = "cancelled"
	NoCaptions        = "captions_unavailable" // source "captions", and the video has none in the language

	// From YouTube and the other sites yt-dlp reads, off its messages.
	VideoUnavailable = "video_unavailable"         // removed, or never existed
	GeoBlocked       = "geo_blocked"               // not available in the country this server is in
	PrivateVideo     = "private_video"             // needs an account that has access
	LoginRequired    = "login_required"            // the site shows it only to signed-in accounts (cookies)
	AgeRestricted    = "age_restricted"            // needs a signed-in, age-verified account
	BotCheck         = "youtube_bot_check"         // YouTube wants this IP to sign in: retrying from it will not help
	YouTubeRateLimit = "youtube_rate_limited"      // HTTP 429 or "try again later": retried after a pause
	LiveNotSupported = "live_stream_not_supported" // a live or upcoming stream: it has no end to transcribe
)

// Kind says where a code appears.
type Kind int

const (
	Request Kind = iota + 1 // in an error reply
	Job                     // on a failed job
	// Either: unsupported_option is refused at creation, or fails a job a
	// gpu-node cannot serve; cancelled is on a cancelled job, and the reply
	// of /v1/audio/transcriptions (which waits for its job) when it was; a
	// site's refusals (video_unavailable, private_video, …) fail a job's
	// download, and the reply of /v1/media/captions, which asks the site
	// the same way.
	Both
)

// Info is a code's entry in the list.
type Info struct {
	Code   string
	Kind   Kind
	Status int // the REST status of an error reply with this code (0 for job-only codes)
}

// All is every code, in the README's order.
var All = []Info{
	{InvalidURL, Request, http.StatusBadRequest},
	{InvalidArgument, Request, http.StatusBadRequest},
	{UnsupportedOption, Both, http.StatusBadRequest},
	{InvalidJSON, Request, http.StatusBadRequest},
	{RequestTooLarge, Request, http.StatusRequestEntityTooLarge},
	{Unauthorized, Request, http.StatusUnauthorized},
	{Forbidden, Request, http.StatusForbidden},
	// Not 429: clients retry those, and a used-up month does not come back in seconds.
	{QuotaExceeded, Request, http.StatusForbidden},
	{NotFound, Request, http.StatusNotFound},
	{Conflict, Request, http.StatusConflict},
	{NotReady, Request, http.StatusConflict},
	{Expired, Request, http.StatusNotFound},
	{RateLimited, Request, http.StatusTooManyRequests},
	{TooManyStreams, Request, http.StatusTooManyRequests},
	{UnsupportedEncoding, Request, http.StatusUnsupportedMediaType},
	{MethodNotAllowed, Request, http.StatusMethodNotAllowed},
	{InvalidIdempotencyKey, Request, http.StatusBadRequest},
	{IdempotencyMismatch, Request, http.StatusUnprocessableEntity}, // IETF Idempotency-Key draft
	{IdempotencyInUse, Request, http.StatusConflict},
	{Timeout, Request, http.StatusGatewayTimeout},
	{Unavailable, Request, http.StatusServiceUnavailable},
	{IntakePaused, Request, http.StatusServiceUnavailable},
	{LeaseLost, Request, http.StatusConflict},
	{TranslationUnavailable, Request, http.StatusServiceUnavailable},
	{TranslationNotReady, Request, http.StatusConflict},
	{TranslationFailed, Request, http.StatusBadGateway},
	{InvalidTranscript, Request, http.StatusBadRequest},
	{RevisionConflict, Request, http.StatusConflict},
	{RevisionNotFound, Request, http.StatusNotFound},
	{JobNotFinished, Request, http.StatusConflict},
	{AudioNotFound, Request, http.StatusNotFound},
	{ShareNotFound, Request, http.StatusNotFound},
	{TooManyShares, Request, http.StatusConflict},
	{Internal, Request, http.StatusInternalServerError},

	{SourceNotFound, Both, http.StatusNotFound},
	{SourceForbidden, Both, http.StatusForbidden},
	{DownloadFailed, Both, http.StatusBadGateway},
	{MediaTooLarge, Job, 0},
	{EmptyMedia, Job, 0},
	{NotMedia, Job, 0},
	{TooLong, Both, http.StatusUnprocessableEntity},
	{TranscodeFailed, Job, 0},
	{AudioUnavailable, Job, 0},
	{EngineFailed, Job, 0},
	{AttemptsExhausted, Job, 0},
	{Cancelled, Both, http.StatusConflict},
	{NoCaptions, Job, 0},
	{BotCheck, Both, http.StatusServiceUnavailable},
	{YouTubeRateLimit, Both, http.StatusServiceUnavailable},
	{VideoUnavailable, Both, http.StatusNotFound},
	{GeoBlocked, Both, http.StatusForbidden},
	{PrivateVideo, Both, http.StatusForbidden},
	{LoginRequired, Both, http.StatusForbidden},
	{AgeRestricted, Both, http.StatusForbidden},
	{LiveNotSupported, Both, http.StatusUnprocessableEntity},
}

var byCode = func() map[string]Info {
	m := make(map[string]Info, len(All))
	for _, i := range All {
		m[i.Code] = i
	}
	return m
}()

// Lookup returns code's entry.
func Lookup(code string) (Info, bool) {
	i, ok := byCode[code]
	return i, ok
}

// IsJobFailure reports whether code may be stored on a failed job.
func IsJobFailure(code string) bool {
	i, ok := byCode[code]
	return ok && (i.Kind == Job || i.Kind == Both)
}

// Status is the REST status of an error reply with code, or 0 when code is
// not a request code.
func Status(code string) int { return byCode[code].Status }

// ofTheMedia are the job failures that are the media's own — no audio, too
// long or too large for this server, gone, private, a live stream, no
// captions to take — which every attempt meets again. The rest depend on
// the network, the site's mood, a proxy or cookie file, or the fleet, all of
// which an operator can change.
var ofTheMedia = map[string]bool{
	NotMedia: true, EmptyMedia: true, TooLong: true, MediaTooLarge: true, SourceNotFound: true, InvalidURL: true,
	VideoUnavailable: true, PrivateVideo: true, LiveNotSupported: true, NoCaptions: true, Cancelled: true,
}

// RetryHelps reports whether running a job that failed with code again may
// end otherwise: false for a failure that is the media's own. The dashboard
// offers no Retry, and core's RetryJob refuses one, where it is false.
func RetryHelps(code string) bool { return !ofTheMedia[code] }
