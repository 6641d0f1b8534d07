// Package jobjson is the public JSON shape of a job: what the edge's REST API
// returns and what core's webhooks carry, so the two never drift apart.
package jobjson

import (
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Media is what the job knows of its media. The site's fields are empty for
// direct files and uploads, and when the site does not say.
type Media struct {
	Title           string  `json:"title"`
	DurationSeconds float64 `json:"duration_seconds"`
	Uploader        string  `json:"uploader,omitempty"`
	Site            string  `json:"site,omitempty"`          // yt-dlp's name for the site: "youtube", "vimeo", "generic"
	SiteID          string  `json:"site_id,omitempty"`       // the site's id of the video
	UploadDate      string  `json:"upload_date,omitempty"`   // YYYY-MM-DD
	ThumbnailURL    string  `json:"thumbnail_url,omitempty"` // http(s)
	WebpageURL      string  `json:"webpage_url,omitempty"`   // the video's page, as the site names it
}

// MediaFrom converts core's media message; nil stays nil.
func MediaFrom(m *ytcaptionv1.Media) *Media {
	if m == nil {
		return nil
	}
	return &Media{Title: m.GetTitle(), DurationSeconds: m.GetDurationSeconds(), Uploader: m.GetUploader(), Site: m.GetSite(),
		SiteID: m.GetSiteId(), UploadDate: m.GetUploadDate(), ThumbnailURL: m.GetThumbnailUrl(), WebpageURL: m.GetWebpageUrl()}
}

// Error is why a job failed.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Job is the public job object.
type Job struct {
	ID               string  `json:"id"`
	Status           string  `json:"status"`
	URL              string  `json:"url"`
	CanonicalURL     string  `json:"canonical_url"`
	Language         string  `json:"language"`
	DetectedLanguage string  `json:"detected_language,omitempty"`
	Engine           string  `json:"engine,omitempty"`
	Model            string  `json:"model,omitempty"`
	Source           string  `json:"source,omitempty"`
	TranscribedFrom  string  `json:"transcribed_from,omitempty"`
	ReusedFrom       string  `json:"reused_from,omitempty"`
	Task             string  `json:"task,omitempty"`
	Chunks           int32   `json:"chunks,omitempty"`
	Progress         float64 `json:"progress"`
	Attempt          int32   `json:"attempt"`
	CreatedAt        string  `json:"created_at,omitempty"`
	DownloadingAt    string  `json:"downloading_at,omitempty"`
	ReadyAt          string  `json:"ready_at,omitempty"`
	TranscribingAt   string  `json:"transcribing_at,omitempty"`
	FinishedAt       string  `json:"finished_at,omitempty"`
	Media            *Media  `json:"media,omitempty"`
	Error            *Error  `json:"error,omitempty"`

	// Speaker labels were asked for, with bounds and the names the owner
	// gave them (label → name).
	Speakers     bool              `json:"speakers,omitempty"`
	MinSpeakers  int32             `json:"min_speakers,omitempty"`
	MaxSpeakers  int32             `json:"max_speakers,omitempty"`
	SpeakerNames map[string]string `json:"speaker_names,omitempty"`

	// Terms the transcript spells as given, and the hallucination guards:
	// which ran and how many segments each removed.
	Vocabulary []string `json:"vocabulary,omitempty"`
	Guards     *Guards  `json:"guards,omitempty"`

	// The transcript's latest revision: 0, the machine's, until its owner
	// saves an edit (PUT /v1/jobs/{id}/transcript).
	Revision int32 `json:"revision"`
}

// Guards are a job's hallucination guards and what they removed.
type Guards struct {
	Silence           bool  `json:"silence"`
	Repetition        bool  `json:"repetition"`
	SilenceDropped    int32 `json:"silence_dropped"`
	RepetitionDropped int32 `json:"repetition_dropped"`
	RepetitionTrimmed int32 `json:"repetition_trimmed"`
}

func timeJSON(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// statusName turns JOB_STATUS_QUEUED into "queued".
func statusName(s ytcaptionv1.JobStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "JOB_STATUS_"))
}

// From converts core's job message.
func From(j *ytcaptionv1.Job) Job {
	out := Job{
		ID: j.GetId(), Status: statusName(j.GetStatus()), URL: j.GetUrl(), CanonicalURL: j.GetCanonicalUrl(),
		Language: j.GetLanguage(), DetectedLanguage: j.GetDetectedLanguage(), Engine: j.GetEngine(), Model: j.GetModel(),
		Source: j.GetSource(), TranscribedFrom: j.GetTranscribedFrom(), ReusedFrom: j.GetReusedFrom(), Task: j.GetTask(), Chunks: j.GetChunks(),
		Progress: j.GetProgress(), Attempt: j.GetAttempt(),
		CreatedAt: timeJSON(j.GetCreatedAt()), DownloadingAt: timeJSON(j.GetDownloadingAt()), ReadyAt: timeJSON(j.GetReadyAt()),
		TranscribingAt: timeJSON(j.GetTranscribingAt()), FinishedAt: timeJSON(j.GetFinishedAt()),
	}
	out.Media = MediaFrom(j.GetMedia())
	out.Speakers, out.MinSpeakers, out.MaxSpeakers, out.SpeakerNames = j.GetSpeakers(), j.GetMinSpeakers(), j.GetMaxSpeakers(), j.GetSpeakerNames()
	out.Vocabulary = j.GetVocabulary()
	out.Revision = j.GetRevision()
	if g := j.GetGuards(); g != nil {
		out.Guards = &Guards{Silence: g.GetSilence(), Repetition: g.GetRepetition(), SilenceDropped: g.GetSilenceDropped(),
			RepetitionDropped: g.GetRepetitionDropped(), RepetitionTrimmed: g.GetRepetitionTrimmed()}
	}
	if e := j.GetError(); e != nil {
		out.Error = &Error{Code: e.GetCode(), Message: e.GetMessage()}
	}
	return out
}
