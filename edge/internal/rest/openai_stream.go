package rest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/jobcache"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// streamFormats are the response formats stream=true streams. OpenAI
// streams only its gpt-4o transcribe models, which answer json or text, and
// ignores stream for the others (whisper-1): here, stream with srt, vtt,
// verbose_json or diarized_json is ignored too, and the answer is the
// synchronous one.
var streamFormats = []string{"json", "text"}

// streamRequested reads the form's stream field: true streams the
// transcription as OpenAI's events, when format is one that streams.
// POST /v1/audio/translations, which shares the handler, ignores it: OpenAI's
// translations take no stream, and its SDKs read their answer as one body.
func streamRequested(c *fiber.Ctx, format string) (bool, error) {
	v := c.FormValue("stream")
	if v == "" || openAITask(c) == "translate" {
		return false, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, codedError(errcode.InvalidArgument, "stream must be true or false")
	}
	return on && slices.Contains(streamFormats, format), nil
}

// OpenAI's transcription stream events (the API reference's "Stream Event"
// transcript.text.delta and transcript.text.done). Their optional logprobs
// and usage (token counts) are left out: no engine here gives either.
type transcriptDelta struct {
	Type  string `json:"type"` // transcript.text.delta
	Delta string `json:"delta"`
}

type transcriptDone struct {
	Type string `json:"type"` // transcript.text.done
	Text string `json:"text"`
}

// streamErrorEvent is an error after the stream began, when the status line
// has gone: an "error" event whose data holds the error as every other REST
// error does, which OpenAI's SDKs raise as an API error.
type streamErrorEvent struct {
	Type  string `json:"type"` // error
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// streamTranscription answers POST /v1/audio/transcriptions with stream=true:
// OpenAI's server-sent events, a transcript.text.delta with each segment's
// text as the gpu-node produces it (from the job's own event stream, as GET
// /v1/jobs/{id}/events follows it), then one transcript.text.done with the
// finished transcript's text. The deltas joined make the done event's text;
// a job retried midway sends only the segments past those already sent, and
// the done event's text, the stored transcript's, is the one to keep.
// Failures before the stream begins are ordinary JSON errors; after, an
// "error" event ends it. A client that goes away ends the watch (the job
// itself runs on, as it does for the synchronous form). The stream takes one
// of the key's event-stream places, as GET /v1/jobs/{id}/events does.
func (s *server) streamTranscription(c *fiber.Ctx, upload *ytcaptionv1.UploadJobRequest) error {
	release, err := s.Gate.Stream(principal(c))
	if err != nil {
		return err
	}
	streaming := false
	// The stream outlives this handler (fasthttp writes it afterwards): it
	// gets its own context, which keeps the request's trace, ended by the
	// wait's bound, when the client goes away or when core ends it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), transcriptionWait)
	defer func() {
		if !streaming {
			cancel()
			release() // refused before the stream began
		}
	}()
	up, err := s.Core.Jobs.UploadJob(ctx, coreRequest(c, upload))
	if err != nil {
		return err
	}
	id := up.Msg.GetJob().GetId()
	stream, err := s.Core.Jobs.WatchJob(ctx, coreRequest(c, &ytcaptionv1.WatchJobRequest{Id: id}))
	if err != nil {
		return err
	}
	// The first message answers the HTTP question (can the job be
	// followed?) before the 200 and the stream begin.
	if !stream.Receive() {
		err := stream.Err()
		stream.Close()
		if err == nil {
			err = connect.NewError(connect.CodeUnavailable, fmt.Errorf("the event stream ended at once"))
		}
		return err
	}
	first := stream.Msg()
	// Made now: the request's caller is gone once the handler returns.
	transcript := coreRequest(c, &ytcaptionv1.GetTranscriptRequest{Id: id, Format: formats["json"]})
	streaming = true
	serveSSE(c, cancel, release, func(w *bufio.Writer, conn net.Conn) {
		defer stream.Close()
		var (
			sent deltas
			last *ytcaptionv1.Job
		)
		ended := relay(ctx, w, conn, stream, first, func(m *ytcaptionv1.WatchJobResponse) error {
			last = m.GetJob()
			for _, sg := range m.GetSegments() {
				if d := sent.add(sg); d != "" {
					if err := writeData(w, "", transcriptDelta{Type: "transcript.text.delta", Delta: d}); err != nil {
						return err
					}
				}
			}
			return w.Flush()
		})
		var err error
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = codedError(errcode.Timeout, fmt.Sprintf("the transcription did not finish within %s", transcriptionWait))
		case !ended || ctx.Err() != nil:
			return // the client went away
		case stream.Err() != nil:
			err = stream.Err()
		case last == nil || !jobcache.Finished(last.GetStatus()):
			err = codedError(errcode.Unavailable, "the job's progress could not be followed; retry shortly")
		default:
			err = jobOutcome(last)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err == nil {
			var text string
			if text, err = s.transcriptText(ctx, transcript); err == nil {
				if rest := sent.rest(text); rest != "" {
					_ = writeData(w, "", transcriptDelta{Type: "transcript.text.delta", Delta: rest})
				}
				_ = writeData(w, "", transcriptDone{Type: "transcript.text.done", Text: text})
				_ = w.Flush()
				return
			}
		}
		ev := streamErrorEvent{Type: "error"}
		ae := s.streamError(err)
		ev.Error.Code, ev.Error.Message = ae.code, ae.message
		_ = writeData(w, "error", ev)
		_ = w.Flush()
	})
	return nil
}

// transcriptText is the finished job's transcript text, as the synchronous
// json answer gives it.
func (s *server) transcriptText(ctx context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	tr, err := s.Core.Jobs.GetTranscript(ctx, req)
	if err != nil {
		return "", err
	}
	var t coreTranscript
	if err := json.Unmarshal(tr.Msg.GetContent(), &t); err != nil {
		return "", fmt.Errorf("read core's transcript: %w", err)
	}
	return t.Text, nil
}

// streamError is err as the REST error writer would say it; unknown errors
// are logged here, once, and said as internal.
func (s *server) streamError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if ae := fromConnect(err); ae != nil {
		return ae
	}
	s.log.Error("transcription stream failed", "err", err)
	return codedError(errcode.Internal, "internal error")
}

// deltas is the text a transcription stream has sent: each segment's text
// with its white space folded, after a space, as core's transcript joins
// them.
type deltas struct {
	seq  int32 // the last segment sent; its attempt's seq numbering, from 0
	text strings.Builder
	any  bool
}

// add is the delta segment sg adds, "" for none. A retried job's new attempt
// numbers its segments from 0 again: those at or before the last one sent
// cover audio already sent, and are skipped.
func (d *deltas) add(sg *ytcaptionv1.Segment) string {
	if d.any && sg.GetSeq() <= d.seq {
		return ""
	}
	d.seq, d.any = sg.GetSeq(), true
	t := strings.Join(strings.Fields(sg.GetText()), " ")
	if t == "" {
		return ""
	}
	if d.text.Len() > 0 {
		t = " " + t
	}
	d.text.WriteString(t)
	return t
}

// rest is what final, the finished transcript's text, adds to what was
// sent: all of it when no segment came live (a transcript from the cache),
// nothing when it does not continue what was sent (the done event's text
// then says it whole).
func (d *deltas) rest(final string) string {
	sent := d.text.String()
	if !strings.HasPrefix(final, sent) {
		return ""
	}
	return final[len(sent):]
}

// writeData writes one server-sent event with data alone, as OpenAI's
// streams do, or under an event name.
func writeData(w *bufio.Writer, event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if event != "" {
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	} else {
		_, err = fmt.Fprintf(w, "data: %s\n\n", b)
	}
	return err
}
