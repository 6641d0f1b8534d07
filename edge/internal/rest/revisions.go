package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// transcriptBodyBytes bounds PUT /v1/jobs/{id}/transcript, whose body is a
// whole edited transcript: core's 20,000 cues of a sentence each, in JSON,
// are about 2 MiB. The bound holds before a byte of the body is read (see
// bodyLimits); core bounds the cues themselves.
const transcriptBodyBytes = 4 << 20

// isTranscriptPut reports whether the request is PUT
// /v1/jobs/{id}/transcript as Fiber routes it: case-insensitive, with or
// without a trailing slash.
func isTranscriptPut(h *fasthttp.RequestHeader) bool {
	if !h.IsPut() {
		return false
	}
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	if err := u.Parse(nil, h.RequestURI()); err != nil {
		return false
	}
	parts := bytes.Split(bytes.Trim(u.PathOriginal(), "/"), []byte("/"))
	return len(parts) == 4 && bytes.EqualFold(parts[0], []byte("v1")) && bytes.EqualFold(parts[1], []byte("jobs")) &&
		bytes.EqualFold(parts[3], []byte("transcript"))
}

// cueBody is a cue of an edited transcript: times in seconds, as the JSON
// format gives them. They are read as numbers, not float64s, so that a
// number past float64's range (1e400) is refused naming its cue rather
// than as a malformed body.
type cueBody struct {
	Start   json.Number `json:"start"`
	End     json.Number `json:"end"`
	Text    string      `json:"text"`
	Speaker string      `json:"speaker"`
}

type saveTranscriptBody struct {
	BaseRevision *int32    `json:"base_revision"`
	Segments     []cueBody `json:"segments"`
	// Label → name, replacing the job's speaker names as PATCH does; absent:
	// the names stay.
	Speakers *map[string]string `json:"speakers"`
}

// maxCueSeconds keeps a time's milliseconds inside int64; core holds cues
// to a far tighter bound (a day), and says so.
const maxCueSeconds = 1e12

// cueMS converts a cue's time in seconds to whole milliseconds.
func cueMS(i int, what string, n json.Number) (int64, error) {
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > maxCueSeconds {
		return 0, codedError(errcode.InvalidTranscript, fmt.Sprintf("cue %d: %s must be a finite number of seconds, 0 or more, got %.40q", i, what, n.String()))
	}
	return int64(math.Round(f * 1000)), nil
}

type revisionJSON struct {
	Revision     int32     `json:"revision"`
	CreatedAt    time.Time `json:"created_at"`
	SegmentCount int32     `json:"segment_count"`
}

func revisionFrom(r *ytcaptionv1.Revision) revisionJSON {
	return revisionJSON{Revision: r.GetRevision(), CreatedAt: r.GetCreatedAt().AsTime(), SegmentCount: r.GetSegmentCount()}
}

// saveTranscript stores the caller's edit of a finished job's transcript as
// its next revision: 200 with the revision, 409 revision_conflict when
// base_revision is not the latest any more (someone saved meanwhile).
func (s *server) saveTranscript(c *fiber.Ctx) error {
	var b saveTranscriptBody
	if err := s.decodeBodyUpTo(c, transcriptBodyBytes, &b); err != nil {
		return err
	}
	if b.BaseRevision == nil || b.Segments == nil {
		return codedError(errcode.InvalidArgument, `"base_revision" (the revision the edit was made on) and "segments" are required`)
	}
	msg := &ytcaptionv1.SaveTranscriptRequest{Id: strings.Clone(c.Params("id")), BaseRevision: *b.BaseRevision,
		Cues: make([]*ytcaptionv1.RevisionCue, len(b.Segments))}
	for i, cb := range b.Segments {
		start, err := cueMS(i, "start", cb.Start)
		if err != nil {
			return err
		}
		end, err := cueMS(i, "end", cb.End)
		if err != nil {
			return err
		}
		msg.Cues[i] = &ytcaptionv1.RevisionCue{StartMs: start, EndMs: end, Text: cb.Text, Speaker: cb.Speaker}
	}
	if b.Speakers != nil {
		msg.RenameSpeakers, msg.SpeakerNames = true, *b.Speakers
	}
	ctx, cancel, req := call(s, c, msg)
	defer cancel()
	defer s.Finished.Forget(msg.GetId()) // this edge's copy of the job would show the old revision
	resp, err := s.Core.Jobs.SaveTranscript(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(revisionFrom(resp.Msg.GetRevision()))
}

// listRevisions lists the revisions of the caller's finished job.
func (s *server) listRevisions(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.ListRevisionsRequest{Id: strings.Clone(c.Params("id"))})
	defer cancel()
	resp, err := s.Core.Jobs.ListRevisions(ctx, req)
	if err != nil {
		return err
	}
	out := struct {
		Revisions []revisionJSON `json:"revisions"`
	}{Revisions: []revisionJSON{}}
	for _, r := range resp.Msg.GetRevisions() {
		out.Revisions = append(out.Revisions, revisionFrom(r))
	}
	return c.JSON(out)
}

// revisionParam reads ?revision= (a whole number; core says whether the job
// has it); nil when absent: the latest.
func revisionParam(c *fiber.Ctx) (*int32, error) {
	v := c.Query("revision")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return nil, codedError(errcode.InvalidArgument, fmt.Sprintf("revision must be a whole number, 0 or more, got %.40q", v))
	}
	r := int32(n)
	return &r, nil
}
