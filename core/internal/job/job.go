// Package job defines what a transcription job is in core: its states and the
// only transitions allowed between them, the typed errors every layer speaks,
// and the transcript data a job accumulates.
package job

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/errcode"
)

// Status is a job's public state.
type Status string

const (
	StatusQueued       Status = "queued"
	StatusDownloading  Status = "downloading"
	StatusReady        Status = "ready"
	StatusTranscribing Status = "transcribing"
	StatusSucceeded    Status = "succeeded"
	StatusFailed       Status = "failed"
	StatusCancelled    Status = "cancelled"
)

// Statuses lists every status in pipeline order.
var Statuses = []Status{
	StatusQueued, StatusDownloading, StatusReady, StatusTranscribing,
	StatusSucceeded, StatusFailed, StatusCancelled,
}

// transitions is the state machine: for each target, the states a job may
// reach it from. The store builds every status-changing UPDATE's WHERE clause
// from it, so no other code decides what is legal.
var transitions = map[Status][]Status{
	// Back to queued when a download attempt fails retryably or its lease expired.
	// From failed too, when an admin retries the job.
	StatusQueued:      {StatusDownloading, StatusFailed},
	StatusDownloading: {StatusQueued},
	// Back to ready when a transcription attempt fails retryably or its lease expired:
	// the audio is already stored.
	StatusReady:        {StatusDownloading, StatusTranscribing},
	StatusTranscribing: {StatusReady, StatusDownloading},        // downloading: long audio, split into chunk jobs
	StatusSucceeded:    {StatusTranscribing, StatusDownloading}, // downloading: the video's own captions were the transcript
	StatusFailed:       {StatusQueued, StatusDownloading, StatusReady, StatusTranscribing},
	StatusCancelled:    {StatusQueued, StatusDownloading, StatusReady, StatusTranscribing},
}

// From returns the states a job may move to `to` from.
func From(to Status) []Status { return transitions[to] }

// CanTransition reports whether a job may move from one state to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[to] {
		if s == from {
			return true
		}
	}
	return false
}

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// SourceKind says which fetcher a job's media needs.
type SourceKind string

const (
	SourceYouTube SourceKind = "youtube" // fetched with yt-dlp from a canonical watch URL
	SourceHTTP    SourceKind = "http"    // a direct media URL fetched with the SSRF-safe client (a page falls back to yt-dlp's generic extractor where enabled)
	SourceSite    SourceKind = "site"    // a page on a site yt-dlp has an extractor for (Vimeo, SoundCloud, …)
	SourceUpload  SourceKind = "upload"  // a file the client sent; its blob key is the canonical URL
)

// An upload's job shows the client's name for the file as its URL,
// "upload:<name>" (its canonical URL is the blob key).
const uploadScheme = "upload:"

// UploadURL is the URL an upload's job shows for the file name.
func UploadURL(name string) string { return uploadScheme + name }

// UploadName is the file name in an upload job's URL.
func UploadName(url string) string { return strings.TrimPrefix(url, uploadScheme) }

// Source is where a job's transcript may come from.
type Source string

const (
	SourceAuto     Source = "auto"     // a person's captions when the video has them, else speech recognition
	SourceCaptions Source = "captions" // the video's captions, automatic ones if need be, or fail
	SourceASR      Source = "asr"      // always speech recognition
)

// ParseSource reads a requested source; "" is auto.
func ParseSource(s string) (Source, error) {
	switch src := Source(s); src {
	case "":
		return SourceAuto, nil
	case SourceAuto, SourceCaptions, SourceASR:
		return src, nil
	}
	return "", Errorf(CodeInvalidArgument, "source must be auto, captions or asr, got %q", s)
}

// What a transcript was made from.
const (
	FromCaptions          = "captions"           // captions a person made
	FromAutomaticCaptions = "automatic_captions" // YouTube's speech recognition
	FromSpeech            = "speech"             // our engines
)

// Job is a job as core stores it.
type Job struct {
	ID           string
	UserID       string
	Status       Status
	URL          string // as submitted
	CanonicalURL string
	SourceKind   SourceKind
	Source       Source // where the transcript may come from
	Language     string // requested: "auto" or an ISO 639-1 code
	Engine       string // empty: any node's default
	Model        string
	Task         string // "transcribe" or "translate" (into English)
	Prompt       string // guides engines that take one
	// Speakers asks for speaker labels, with bounds on how many speakers
	// (0: the engine decides); SpeakerNames are the names the owner gave
	// them, label → name, applied when rendering.
	Speakers     bool
	MinSpeakers  int
	MaxSpeakers  int
	SpeakerNames map[string]string
	// Vocabulary are terms the transcript spells as given; Guards says
	// which hallucination guards run on the gpu-node and what they removed.
	Vocabulary []string
	Guards     Guards

	DetectedLanguage string
	Progress         float64
	MediaTitle       string
	MediaUploader    string
	// What the site says of the media (ytdlp.Result); "" for direct files
	// and uploads, or when the site does not say.
	MediaSite       string // yt-dlp's extractor key, lower-case: "youtube", "vimeo", "generic"
	MediaSiteID     string // the site's id of the video
	MediaUploadDate string // YYYY-MM-DD
	MediaThumbnail  string // an http(s) URL
	MediaWebpageURL string // the video's page, as the site names it
	TranscribedFrom string // FromCaptions, FromAutomaticCaptions or FromSpeech once done
	ReusedFrom      string // the job whose transcript a cache hit copied
	// TranscriptExpired: its segments are gone, past the retention period.
	TranscriptExpired bool
	// Revision is the transcript's latest revision: 0, the machine's, until
	// its owner saves an edit (each save adds one).
	Revision int
	// Long audio: a parent has Chunks children, each ParentID, ChunkIndex and
	// ChunkOffsetMS from the start of the parent's audio.
	ParentID      string
	ChunkIndex    int
	ChunkOffsetMS int64
	Chunks        int
	MediaDuration time.Duration
	AudioKey      string // blob key of the normalised audio, once ready

	Epoch          int64 // fencing token, bumped by every claim
	LeaseOwner     string
	LeaseExpiresAt time.Time
	Attempt        int
	MaxAttempts    int
	// CancelRequested is set when a job was cancelled while a stage held it, so
	// that the holder learns to stop from its next lease call.
	CancelRequested bool

	ErrorCode    string
	ErrorMessage string
	// TraceParent is the W3C traceparent of the request that created the job.
	TraceParent string

	CreatedAt      time.Time
	DownloadingAt  time.Time
	ReadyAt        time.Time
	TranscribingAt time.Time
	FinishedAt     time.Time
	UpdatedAt      time.Time
}

// Segment is one stretch of transcript, timed in milliseconds from the start of
// the media. Seq numbers a lease's segments from 0 without gaps.
type Segment struct {
	Seq     int
	StartMS int64
	EndMS   int64
	Text    string
	Words   []Word
	Speaker string // "Speaker 1", … on a job that asked for speakers; "" when unknown
}

// Word is one recognised word with its timing and the engine's confidence.
type Word struct {
	StartMS     int64   `json:"start_ms"`
	EndMS       int64   `json:"end_ms"`
	Text        string  `json:"text"`
	Probability float32 `json:"probability,omitempty"`
	Speaker     string  `json:"speaker,omitempty"`
}

// Transcript is what the renderers turn into caption files.
type Transcript struct {
	JobID    string
	Language string // detected if known, else requested
	Engine   string
	Model    string
	Duration time.Duration
	// Revision is the revision Segments are (0: the machine's).
	Revision int
	Segments []Segment
	// SpeakerNames rename speaker labels in every format: label → name.
	SpeakerNames map[string]string
	// Guards are the hallucination guards that ran on speech and what they
	// removed, shown in the JSON format; nil when none ran.
	Guards *Guards
}

// Error codes, by their names in core; the list and its meanings are
// package errcode's, which the edge, the gpu-node and the CLI share.
const (
	CodeInvalidURL      = errcode.InvalidURL
	CodeInvalidArgument = errcode.InvalidArgument
	CodeNotFound        = errcode.NotFound
	CodeUnauthorized    = errcode.Unauthorized
	CodeForbidden       = errcode.Forbidden
	CodeConflict        = errcode.Conflict
	CodeIdempotencyKey  = errcode.IdempotencyMismatch
	CodeNotReady        = errcode.NotReady
	CodeExpired         = errcode.Expired
	CodeLeaseLost       = errcode.LeaseLost
	CodeUnavailable     = errcode.Unavailable
	CodeQuotaExceeded   = errcode.QuotaExceeded
	CodeIntakePaused    = errcode.IntakePaused
	CodeInternal        = errcode.Internal

	CodeSourceNotFound   = errcode.SourceNotFound
	CodeSourceForbidden  = errcode.SourceForbidden
	CodeDownloadFailed   = errcode.DownloadFailed
	CodeMediaTooLarge    = errcode.MediaTooLarge
	CodeEmptyMedia       = errcode.EmptyMedia
	CodeNotMedia         = errcode.NotMedia
	CodeTooLong          = errcode.TooLong
	CodeTranscodeFailed  = errcode.TranscodeFailed
	CodeEngineFailed     = errcode.EngineFailed
	CodeAttemptsExceeded = errcode.AttemptsExhausted
	CodeCancelled        = errcode.Cancelled
	CodeNoCaptions       = errcode.NoCaptions
	CodeUnsupported      = errcode.UnsupportedOption

	CodeVideoUnavailable = errcode.VideoUnavailable
	CodeGeoBlocked       = errcode.GeoBlocked
	CodePrivateVideo     = errcode.PrivateVideo
	CodeLoginRequired    = errcode.LoginRequired
	CodeAgeRestricted    = errcode.AgeRestricted
	CodeBotCheck         = errcode.BotCheck
	CodeRateLimited      = errcode.YouTubeRateLimit
	CodeLiveNotSupported = errcode.LiveNotSupported
)

// Error is a coded error. Code is stable and machine-readable; Message is for
// people and never contains secrets, presigned URLs or transcript text.
type Error struct {
	Code      string
	Message   string
	Retryable bool // another attempt (another node, later) might succeed
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) match any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// Errorf returns a permanent coded error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is; they carry a code and no message.
var (
	ErrNotFound  = &Error{Code: CodeNotFound}
	ErrLeaseLost = &Error{Code: CodeLeaseLost}
	ErrConflict  = &Error{Code: CodeConflict}
)

// CodeOf returns the code of the first *Error in err's chain, or CodeInternal.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Guards are a job's hallucination guards: which run (both by default), and
// what they removed once the job is done.
type Guards struct {
	Silence, Repetition bool
	GuardCounts
}

// GuardCounts is what the guards removed: segments dropped inside silence,
// segments dropped as repeats, segments kept with a loop collapsed.
type GuardCounts struct {
	SilenceDropped, RepetitionDropped, RepetitionTrimmed int
}
