package api

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Bounds on an edited transcript, checked before anything is stored. A
// four-hour talk (the longest media core takes by default) is about 3,000
// cues; MaxRevisionCues leaves room for a day of audio in short cues while
// keeping one revision a few megabytes. A cue is a caption, not a document.
const (
	MaxRevisionCues = 20_000
	MaxCueChars     = 2_000
	// MaxCueEnd is the latest a cue may end: past it, time stamps in the
	// caption formats (hours in two digits) stop meaning anything.
	MaxCueEnd = 24 * time.Hour
	// MaxTranscriptMessageBytes bounds SaveTranscript's request, on a route
	// of its own: MaxRevisionCues cues of short text, with room.
	MaxTranscriptMessageBytes = 8 << 20
	// audioURLTTL is how long the URL GetJobAudio hands the edge works: the
	// edge fetches it at once; a transfer under way outlives it.
	audioURLTTL = 5 * time.Minute
)

func invalidCue(i int, format string, args ...any) error {
	return job.Errorf(errcode.InvalidTranscript, "cue %d: "+format, append([]any{i}, args...)...)
}

// checkCues validates an edited transcript: the count, then each cue's
// times (whole milliseconds from 0 to MaxCueEnd, ending after it starts,
// starting no earlier than the cue before), its text (1..MaxCueChars
// characters of UTF-8 without control characters: a line break is the cue
// shaper's to make, and a blank line would end an SRT cue early) and its
// speaker label (as a speaker name). Each refusal names the cue's index.
func checkCues(cues []*ytcaptionv1.RevisionCue) error {
	if len(cues) > MaxRevisionCues {
		return job.Errorf(errcode.InvalidTranscript, "at most %d cues, got %d", MaxRevisionCues, len(cues))
	}
	var prev int64
	for i, c := range cues {
		start, end := c.GetStartMs(), c.GetEndMs()
		switch {
		case start < 0:
			return invalidCue(i, "start %d ms is negative", start)
		case end <= start:
			return invalidCue(i, "end %d ms is not after start %d ms", end, start)
		case end > MaxCueEnd.Milliseconds():
			return invalidCue(i, "end %d ms is past %s", end, MaxCueEnd)
		case start < prev:
			return invalidCue(i, "starts at %d ms, before cue %d (%d ms): cues are ordered by start", start, i-1, prev)
		}
		prev = start
		text := c.GetText()
		n := utf8.RuneCountInString(text)
		switch {
		case strings.TrimSpace(text) == "":
			return invalidCue(i, "text is empty (delete the cue instead)")
		case n > MaxCueChars:
			return invalidCue(i, "text is %d characters, more than %d", n, MaxCueChars)
		case !cueText(text):
			return invalidCue(i, "text holds a control character or is not UTF-8")
		}
		if sp := c.GetSpeaker(); sp != "" && !speakerName(sp) {
			return invalidCue(i, "a speaker is 1 to %d printable characters, without surrounding spaces: %.80q", MaxSpeakerNameChars, sp)
		}
	}
	return nil
}

// cueText says whether s is UTF-8 without control characters or line and
// paragraph separators (unlike printable, it takes every space, such as
// French's no-break space before punctuation).
func cueText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// editedSegments turns the cues into segments, keeping a cue's words from
// base where the cue is one of base's unchanged in text and its words still
// fall inside its times (they label the speaker given); an edited text's
// words no longer match it, so they go.
func editedSegments(cues []*ytcaptionv1.RevisionCue, base []job.Segment) []job.Segment {
	byText := map[string][]int{}
	for i, sg := range base {
		byText[sg.Text] = append(byText[sg.Text], i)
	}
	out := make([]job.Segment, len(cues))
	for i, c := range cues {
		sg := job.Segment{Seq: i, StartMS: c.GetStartMs(), EndMS: c.GetEndMs(), Text: c.GetText(), Speaker: c.GetSpeaker()}
		if same := byText[sg.Text]; len(same) > 0 {
			byText[sg.Text] = same[1:]
			sg.Words = wordsWithin(base[same[0]].Words, sg)
		}
		out[i] = sg
	}
	return out
}

// wordsWithin returns words relabelled with sg's speaker, or nil when one
// falls outside sg's times.
func wordsWithin(words []job.Word, sg job.Segment) []job.Word {
	out := make([]job.Word, 0, len(words))
	for _, w := range words {
		if w.StartMS < sg.StartMS || w.EndMS > sg.EndMS {
			return nil
		}
		if w.Speaker != "" || sg.Speaker != "" {
			w.Speaker = sg.Speaker
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func revisionToProto(r store.Revision) *ytcaptionv1.Revision {
	return &ytcaptionv1.Revision{Revision: int32(r.Revision), CreatedAt: ts(r.CreatedAt), SegmentCount: int32(r.SegmentCount)}
}

// SaveTranscript stores the caller's edit of a finished job's transcript as
// its next revision (see the proto). Another user's job is not found.
func (s *JobService) SaveTranscript(ctx context.Context, req *connect.Request[ytcaptionv1.SaveTranscriptRequest]) (*connect.Response[ytcaptionv1.SaveTranscriptResponse], error) {
	m := req.Msg
	var names map[string]string // nil: the names stay
	if m.GetRenameSpeakers() {
		names = m.GetSpeakerNames()
		if names == nil {
			names = map[string]string{}
		}
	}
	if err := checkCues(m.GetCues()); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	if err := checkSpeakerNames(names); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	if m.GetBaseRevision() < 0 {
		return nil, toConnectError(ctx, s.log, job.Errorf(job.CodeInvalidArgument, "base_revision must be 0 or more, got %d", m.GetBaseRevision()))
	}
	j, err := s.store.GetJob(ctx, userID(ctx), m.GetId())
	var base []job.Segment
	if err == nil && int(m.GetBaseRevision()) == j.Revision && !j.TranscriptExpired {
		// The base's words; a stale base is refused by the save itself.
		base, err = s.store.RevisionSegments(ctx, j, j.Revision)
	}
	var r store.Revision
	if err == nil {
		r, err = s.store.SaveRevision(ctx, userID(ctx), m.GetId(), int(m.GetBaseRevision()), editedSegments(m.GetCues(), base), names)
	}
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	s.log.InfoContext(ctx, "transcript revised", "job_id", m.GetId(), "revision", r.Revision, "cues", r.SegmentCount)
	return connect.NewResponse(&ytcaptionv1.SaveTranscriptResponse{Revision: revisionToProto(r)}), nil
}

// ListRevisions lists the revisions of the caller's finished job.
func (s *JobService) ListRevisions(ctx context.Context, req *connect.Request[ytcaptionv1.ListRevisionsRequest]) (*connect.Response[ytcaptionv1.ListRevisionsResponse], error) {
	revs, err := s.store.ListRevisions(ctx, userID(ctx), req.Msg.GetId())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	resp := &ytcaptionv1.ListRevisionsResponse{}
	for _, r := range revs {
		resp.Revisions = append(resp.Revisions, revisionToProto(r))
	}
	return connect.NewResponse(resp), nil
}

// GetJobAudio presigns the caller's job's stored audio for the edge, which
// fetches it for its client; another user's job is not found.
func (s *JobService) GetJobAudio(ctx context.Context, req *connect.Request[ytcaptionv1.GetJobAudioRequest]) (*connect.Response[ytcaptionv1.GetJobAudioResponse], error) {
	j, err := s.store.GetJob(ctx, userID(ctx), req.Msg.GetId())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	resp, err := s.audioURL(ctx, j)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	return connect.NewResponse(resp), nil
}

// audioURL presigns j's stored audio: audio_not_found when there is none
// (retention removed it, or the transcript came from a site's captions and
// nothing was downloaded). Whoever serves a job's audio — its owner's API,
// a share link — checks who may hear it first.
func (s *JobService) audioURL(ctx context.Context, j job.Job) (*ytcaptionv1.GetJobAudioResponse, error) {
	if j.AudioKey == "" {
		return nil, job.Errorf(errcode.AudioNotFound, "job %s has no stored audio: it was removed when its retention period ended, or none was downloaded", j.ID)
	}
	expires := time.Now().Add(audioURLTTL)
	u, err := s.blobs.PresignGet(ctx, j.AudioKey, audioURLTTL)
	if err != nil {
		return nil, err
	}
	return &ytcaptionv1.GetJobAudioResponse{Url: u, ContentType: "audio/wav", ExpiresAt: ts(expires)}, nil
}
