package api

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

var statusToProto = map[job.Status]ytcaptionv1.JobStatus{
	job.StatusQueued:       ytcaptionv1.JobStatus_JOB_STATUS_QUEUED,
	job.StatusDownloading:  ytcaptionv1.JobStatus_JOB_STATUS_DOWNLOADING,
	job.StatusReady:        ytcaptionv1.JobStatus_JOB_STATUS_READY,
	job.StatusTranscribing: ytcaptionv1.JobStatus_JOB_STATUS_TRANSCRIBING,
	job.StatusSucceeded:    ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED,
	job.StatusFailed:       ytcaptionv1.JobStatus_JOB_STATUS_FAILED,
	job.StatusCancelled:    ytcaptionv1.JobStatus_JOB_STATUS_CANCELLED,
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// JobToProto is a job as the API shows it: to the edge, and in webhooks.
func JobToProto(j job.Job) *ytcaptionv1.Job {
	p := &ytcaptionv1.Job{
		Id:               j.ID,
		Status:           statusToProto[j.Status],
		Url:              j.URL,
		CanonicalUrl:     j.CanonicalURL,
		Language:         j.Language,
		DetectedLanguage: j.DetectedLanguage,
		Engine:           j.Engine,
		Model:            j.Model,
		Progress:         j.Progress,
		Attempt:          int32(j.Attempt),
		CreatedAt:        ts(j.CreatedAt),
		DownloadingAt:    ts(j.DownloadingAt),
		ReadyAt:          ts(j.ReadyAt),
		TranscribingAt:   ts(j.TranscribingAt),
		FinishedAt:       ts(j.FinishedAt),
		Source:           string(j.Source),
		TranscribedFrom:  j.TranscribedFrom,
		ReusedFrom:       j.ReusedFrom,
		Task:             j.Task,
		Chunks:           int32(j.Chunks),
		Speakers:         j.Speakers,
		MinSpeakers:      int32(j.MinSpeakers),
		MaxSpeakers:      int32(j.MaxSpeakers),
		SpeakerNames:     j.SpeakerNames,
		Revision:         int32(j.Revision),
		Vocabulary:       j.Vocabulary,
		Guards: &ytcaptionv1.Guards{Silence: j.Guards.Silence, Repetition: j.Guards.Repetition,
			SilenceDropped: int32(j.Guards.SilenceDropped), RepetitionDropped: int32(j.Guards.RepetitionDropped),
			RepetitionTrimmed: int32(j.Guards.RepetitionTrimmed)},
	}
	if j.MediaTitle != "" || j.MediaDuration > 0 || j.MediaSite != "" {
		p.Media = &ytcaptionv1.Media{Title: j.MediaTitle, DurationSeconds: j.MediaDuration.Seconds(), Uploader: j.MediaUploader,
			Site: j.MediaSite, SiteId: j.MediaSiteID, UploadDate: j.MediaUploadDate, ThumbnailUrl: j.MediaThumbnail, WebpageUrl: j.MediaWebpageURL}
	}
	if j.ErrorCode != "" {
		p.Error = &ytcaptionv1.JobError{Code: j.ErrorCode, Message: j.ErrorMessage}
	}
	return p
}

func segmentToProto(s job.Segment) *ytcaptionv1.Segment {
	p := &ytcaptionv1.Segment{Seq: int32(s.Seq), StartMs: s.StartMS, EndMs: s.EndMS, Text: s.Text, Speaker: s.Speaker}
	for _, w := range s.Words {
		p.Words = append(p.Words, &ytcaptionv1.Word{StartMs: w.StartMS, EndMs: w.EndMS, Text: w.Text, Probability: w.Probability, Speaker: w.Speaker})
	}
	return p
}

func segmentFromProto(p *ytcaptionv1.Segment) job.Segment {
	s := job.Segment{Seq: int(p.GetSeq()), StartMS: p.GetStartMs(), EndMS: p.GetEndMs(), Text: p.GetText(), Speaker: boundLabel(p.GetSpeaker())}
	for _, w := range p.GetWords() {
		s.Words = append(s.Words, job.Word{StartMS: w.GetStartMs(), EndMS: w.GetEndMs(), Text: w.GetText(), Probability: w.GetProbability(),
			Speaker: boundLabel(w.GetSpeaker())})
	}
	return s
}

// listingToProto is a video's caption listing; url is its canonical URL.
func listingToProto(url string, l ytdlp.Listing) *ytcaptionv1.ListCaptionsResponse {
	r := l.Result
	p := &ytcaptionv1.ListCaptionsResponse{Url: url, Site: r.Site, Id: r.SiteID, Title: r.Title, Language: l.Language,
		Tracks: []*ytcaptionv1.CaptionTrack{}}
	if r.Title != "" || r.Duration > 0 || r.Site != "" {
		p.Media = &ytcaptionv1.Media{Title: r.Title, DurationSeconds: r.Duration.Seconds(), Uploader: r.Uploader,
			Site: r.Site, SiteId: r.SiteID, UploadDate: r.UploadDate, ThumbnailUrl: r.Thumbnail, WebpageUrl: r.WebpageURL}
	}
	for _, t := range l.Tracks {
		p.Tracks = append(p.Tracks, &ytcaptionv1.CaptionTrack{Language: t.Language, Name: t.Name, Automatic: t.Automatic,
			Translatable: t.Translatable, Original: t.Original})
	}
	return p
}
