package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/edge/internal/jobcache"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// transcriptionWait bounds how long one OpenAI-style request waits for its job.
const transcriptionWait = 30 * time.Minute

// coreTranscript is core's JSON transcript, which verbose_json is built from.
type coreTranscript struct {
	Language string  `json:"language"`
	Duration float64 `json:"duration_seconds"`
	Text     string  `json:"text"`
	Segments []struct {
		ID    int     `json:"id"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
		Text  string  `json:"text"`
		Words []struct {
			Start   float64 `json:"start"`
			End     float64 `json:"end"`
			Word    string  `json:"word"`
			Speaker string  `json:"speaker"`
		} `json:"words"`
		Speaker string `json:"speaker"`
	} `json:"segments"`
}

type openAISegment struct {
	ID               int     `json:"id"`
	Seek             int     `json:"seek"`
	Start            float64 `json:"start"`
	End              float64 `json:"end"`
	Text             string  `json:"text"`
	Tokens           []int   `json:"tokens"`
	Temperature      float64 `json:"temperature"`
	AvgLogprob       float64 `json:"avg_logprob"`
	CompressionRatio float64 `json:"compression_ratio"`
	NoSpeechProb     float64 `json:"no_speech_prob"`
}

type openAIWord struct {
	Word  string  `json:"word"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

type openAIVerbose struct {
	Task     string          `json:"task"`
	Language string          `json:"language"`
	Duration float64         `json:"duration"`
	Text     string          `json:"text"`
	Segments []openAISegment `json:"segments,omitempty"`
	Words    []openAIWord    `json:"words,omitempty"`
}

var openAIFormats = []string{"json", "text", "srt", "vtt", "verbose_json", "diarized_json"}

// transcriptions is OpenAI's POST /v1/audio/transcriptions, so OpenAI SDKs
// work unchanged: the uploaded file becomes a job, the call waits for it,
// and the answer takes OpenAI's shapes. model is accepted and ignored — the
// gpu-nodes' engines decide; prompt reaches engines that take one. With
// stream=true (json and text only) the answer is OpenAI's transcription
// event stream instead (openai_stream.go).
func (s *server) transcriptions(c *fiber.Ctx) error {
	fh, err := c.FormFile("file")
	if err != nil {
		return codedError(errcode.InvalidArgument, "send the audio as the multipart field \"file\"")
	}
	if fh.Size > gate.MaxUploadBytes {
		return codedError(errcode.RequestTooLarge, fmt.Sprintf("the file is larger than %d MiB", gate.MaxUploadBytes>>20))
	}
	format := strings.Clone(c.FormValue("response_format", "json"))
	if !slices.Contains(openAIFormats, format) {
		return codedError(errcode.InvalidArgument, fmt.Sprintf("response_format must be one of %s", strings.Join(openAIFormats, ", ")))
	}
	stream, err := streamRequested(c, format)
	if err != nil {
		return err
	}
	words := false
	if form, err := c.MultipartForm(); err == nil {
		words = slices.Contains(form.Value["timestamp_granularities[]"], "word")
	}
	// Core takes these as protobuf strings, which must be UTF-8: other bytes
	// are the client's mistake, not an internal error.
	for name, v := range map[string]string{"file name": fh.Filename, "language": c.FormValue("language"), "prompt": c.FormValue("prompt")} {
		if !utf8.ValidString(v) {
			return codedError(errcode.InvalidArgument, fmt.Sprintf("the %s is not valid UTF-8", name))
		}
	}
	f, err := fh.Open()
	if err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}

	upload := &ytcaptionv1.UploadJobRequest{
		Filename: strings.Clone(fh.Filename), Data: data, Language: strings.Clone(c.FormValue("language")),
		Prompt: strings.Clone(c.FormValue("prompt")), Task: openAITask(c),
		// Speaker labels need a gpu-node whose engine gives them: core
		// refuses the job with unsupported_option when none does.
		Speakers: format == "diarized_json",
	}
	if stream {
		return s.streamTranscription(c, upload)
	}

	ctx, cancel := context.WithTimeout(c.UserContext(), transcriptionWait)
	defer cancel()
	up, err := s.Core.Jobs.UploadJob(ctx, coreRequest(c, upload))
	if err != nil {
		return err
	}
	j, err := s.waitForJob(ctx, c, up.Msg.GetJob().GetId())
	if err != nil {
		return err
	}
	if err := jobOutcome(j); err != nil {
		return err
	}

	coreFormat := map[string]ytcaptionv1.TranscriptFormat{"srt": formats["srt"], "vtt": formats["vtt"], "text": formats["txt"]}[format]
	if coreFormat == ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_UNSPECIFIED {
		coreFormat = formats["json"]
	}
	tr, err := s.Core.Jobs.GetTranscript(ctx, coreRequest(c, &ytcaptionv1.GetTranscriptRequest{Id: j.GetId(), Format: coreFormat}))
	if err != nil {
		return err
	}
	if format == "srt" || format == "vtt" || format == "text" {
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.Send(tr.Msg.GetContent())
	}
	var t coreTranscript
	if err := json.Unmarshal(tr.Msg.GetContent(), &t); err != nil {
		return fmt.Errorf("read core's transcript: %w", err)
	}
	if format == "json" {
		return c.JSON(fiber.Map{"text": t.Text})
	}
	if format == "diarized_json" {
		return c.JSON(diarized(t))
	}
	out := openAIVerbose{Task: openAITaskName(c), Language: t.Language, Duration: t.Duration, Text: t.Text}
	for _, sg := range t.Segments {
		out.Segments = append(out.Segments, openAISegment{ID: sg.ID, Start: sg.Start, End: sg.End, Text: sg.Text, Tokens: []int{}})
		if words {
			for _, w := range sg.Words {
				out.Words = append(out.Words, openAIWord{Word: w.Word, Start: w.Start, End: w.End})
			}
		}
	}
	return c.JSON(out)
}

// jobOutcome is the error a finished job answers with; nil when it succeeded.
func jobOutcome(j *ytcaptionv1.Job) error {
	switch j.GetStatus() {
	case ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED:
		return nil
	case ytcaptionv1.JobStatus_JOB_STATUS_FAILED:
		// The job's own failure code (errcode's job codes, which have no
		// status of their own), as the OpenAI API answers a failed one: 400.
		return newError(http.StatusBadRequest, j.GetError().GetCode(), "the transcription failed: "+j.GetError().GetMessage())
	default:
		return codedError(errcode.Cancelled, "the job was cancelled")
	}
}

// waitForJob follows the job's event stream until it ends.
func (s *server) waitForJob(ctx context.Context, c *fiber.Ctx, id string) (*ytcaptionv1.Job, error) {
	stream, err := s.Core.Jobs.WatchJob(ctx, coreRequest(c, &ytcaptionv1.WatchJobRequest{Id: id}))
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var last *ytcaptionv1.Job
	for stream.Receive() {
		last = stream.Msg().GetJob()
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if last == nil || !jobcache.Finished(last.GetStatus()) {
		return nil, codedError(errcode.Unavailable, "the job's progress could not be followed; retry shortly")
	}
	return last, nil
}
