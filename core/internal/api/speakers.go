package api

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/job"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Bounds on what speaker options and names may ask for: diarization models
// separate a handful of voices; a name is a caption's label, not a text.
const (
	MaxSpeakers         = 32 // a job's min_speakers and max_speakers, and the names a rename gives
	MaxSpeakerNameChars = 64 // a name, and a label it renames
	// maxLabelChars bounds a label a gpu-node pushes: labels are core's
	// "Speaker N", so anything longer is cut rather than stored.
	maxLabelChars = 64
)

// checkSpeakers validates a job's speaker options: bounds only with
// speakers, each 1..MaxSpeakers (0: the engine decides), min <= max.
func checkSpeakers(speakers bool, lo, hi int32) error {
	switch {
	case !speakers && (lo != 0 || hi != 0):
		return job.Errorf(job.CodeInvalidArgument, "min_speakers and max_speakers need speakers: true")
	case lo < 0 || lo > MaxSpeakers || hi < 0 || hi > MaxSpeakers:
		return job.Errorf(job.CodeInvalidArgument, "min_speakers and max_speakers must be from 1 to %d, got %d and %d", MaxSpeakers, lo, hi)
	case lo > 0 && hi > 0 && lo > hi:
		return job.Errorf(job.CodeInvalidArgument, "min_speakers (%d) is more than max_speakers (%d)", lo, hi)
	}
	return nil
}

// checkSpeakerNames validates a rename: at most MaxSpeakers entries, each
// label and name 1..MaxSpeakerNameChars printable characters with no
// control or line-breaking characters, which would end a caption's line or
// cue early.
func checkSpeakerNames(names map[string]string) error {
	if len(names) > MaxSpeakers {
		return job.Errorf(job.CodeInvalidArgument, "at most %d speaker names, got %d", MaxSpeakers, len(names))
	}
	for label, name := range names {
		for _, v := range []struct{ what, s string }{{"label", label}, {"name", name}} {
			if !speakerName(v.s) {
				return job.Errorf(job.CodeInvalidArgument,
					"a speaker %s is 1 to %d printable characters, without control characters or surrounding spaces: %.80q",
					v.what, MaxSpeakerNameChars, v.s)
			}
		}
	}
	return nil
}

// speakerName says whether s may be a speaker's label or name.
func speakerName(s string) bool {
	n := utf8.RuneCountInString(s)
	return n > 0 && n <= MaxSpeakerNameChars && strings.TrimSpace(s) == s && printable(s)
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// RenameSpeakers replaces the names of the caller's job's speakers; every
// format shows them from then on. Another user's job is not found.
func (s *JobService) RenameSpeakers(ctx context.Context, req *connect.Request[ytcaptionv1.RenameSpeakersRequest]) (*connect.Response[ytcaptionv1.RenameSpeakersResponse], error) {
	if err := checkSpeakerNames(req.Msg.GetNames()); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	j, err := s.store.GetJob(ctx, userID(ctx), req.Msg.GetId())
	if err == nil && !j.Speakers {
		err = job.Errorf(job.CodeInvalidArgument, "job %s has no speaker labels to rename: it was created without speakers: true", j.ID)
	}
	if err == nil {
		j, err = s.store.SetSpeakerNames(ctx, userID(ctx), req.Msg.GetId(), req.Msg.GetNames())
	}
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	s.log.InfoContext(ctx, "speakers renamed", "job_id", j.ID, "names", len(j.SpeakerNames))
	return connect.NewResponse(&ytcaptionv1.RenameSpeakersResponse{Job: JobToProto(j)}), nil
}

// boundLabel bounds a speaker label a gpu-node pushed.
func boundLabel(s string) string {
	if utf8.RuneCountInString(s) <= maxLabelChars {
		return s
	}
	return string([]rune(s)[:maxLabelChars])
}
