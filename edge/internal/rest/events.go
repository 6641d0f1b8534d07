package rest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ytcaption/ytcaption/internal/jobjson"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// keepAlive is how often an idle event stream sends a comment, so proxies
// and load balancers do not close it.
const keepAlive = 15 * time.Second

type wordJSON struct {
	StartMS     int64   `json:"start_ms"`
	EndMS       int64   `json:"end_ms"`
	Text        string  `json:"text"`
	Probability float32 `json:"probability,omitempty"`
	Speaker     string  `json:"speaker,omitempty"`
}

type segmentJSON struct {
	Seq     int32      `json:"seq"`
	StartMS int64      `json:"start_ms"`
	EndMS   int64      `json:"end_ms"`
	Text    string     `json:"text"`
	Speaker string     `json:"speaker,omitempty"` // the label, as the engine gave it: names apply to transcripts
	Words   []wordJSON `json:"words,omitempty"`
}

// events streams a job as Server-Sent Events: "job" events carry the job
// (status, progress) whenever it changes, "segment" events each transcript
// segment as the gpu-node produces it. Every event's id is a cursor; a client
// reconnecting with Last-Event-ID continues after it, with no segment missed
// or repeated. The stream ends after the job's terminal "job" event.
func (s *server) events(c *fiber.Ctx) error {
	release, err := s.Gate.Stream(principal(c))
	if err != nil {
		return err
	}
	streaming := false
	defer func() {
		if !streaming {
			release() // refused before the stream began
		}
	}()
	after := strings.Clone(c.Get("Last-Event-ID"))
	if after == "" {
		after = strings.Clone(c.Query("last_event_id")) // for clients that cannot set headers
	}
	// The stream outlives this handler (fasthttp writes it afterwards): it
	// gets its own context, ended when the client goes away or core ends it.
	ctx, cancel := context.WithCancel(context.Background())
	req := coreRequest(c, &ytcaptionv1.WatchJobRequest{Id: strings.Clone(c.Params("id")), After: after})
	stream, err := s.Core.Jobs.WatchJob(ctx, req)
	if err != nil {
		cancel()
		return err
	}
	// The first message answers the HTTP question (does the job exist, is it
	// the caller's?) before the 200 and the stream begin.
	if !stream.Receive() {
		err := stream.Err()
		stream.Close()
		cancel()
		if err == nil {
			err = connect.NewError(connect.CodeUnavailable, fmt.Errorf("the event stream ended at once"))
		}
		return err
	}
	first := stream.Msg()
	streaming = true
	serveSSE(c, cancel, release, func(w *bufio.Writer, conn net.Conn) {
		defer stream.Close()
		relay(ctx, w, conn, stream, first, func(m *ytcaptionv1.WatchJobResponse) error { return writeEvents(w, m) })
	})
	return nil
}

// relay hands first, then each message core sends on stream, to write, and
// keeps an idle stream alive with comments, until core ends the stream
// (ended; stream.Err then says whether it failed), the client goes away or a
// write fails. ctx is the stream's, ended when the client goes away
// (serveSSE's cancel).
func relay(ctx context.Context, w *bufio.Writer, conn net.Conn, stream *connect.ServerStreamForClient[ytcaptionv1.WatchJobResponse],
	first *ytcaptionv1.WatchJobResponse, write func(*ytcaptionv1.WatchJobResponse) error) (ended bool) {
	msgs := make(chan *ytcaptionv1.WatchJobResponse)
	go func() {
		defer close(msgs)
		for stream.Receive() {
			select {
			case msgs <- stream.Msg():
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for m := first; ; {
		// The listener's WriteTimeout would end a long stream: each write
		// gets its own deadline instead, so only a client that stops
		// reading is cut off.
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if m != nil {
			if err := write(m); err != nil {
				return false // the client went away
			}
		}
		select {
		case next, ok := <-msgs:
			if !ok {
				return true // core ended the stream: the job is terminal, or core (or ctx) ended it
			}
			m = next
		case <-tick.C:
			m = nil
			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := w.WriteString(": keep-alive\n\n"); err != nil || w.Flush() != nil {
				return false
			}
		case <-ctx.Done():
			return false // the client went away
		}
	}
}

// serveSSE answers with a Server-Sent Events stream that write fills after
// the handler has returned (fasthttp writes the body then). The connection
// ends with the stream, so nothing else will read from it: a read that
// returns is the client leaving (or the connection closing), noticed at once
// rather than at the next keep-alive write — cancel ends what feeds the
// stream, and release gives the stream's place back, without delay.
func serveSSE(c *fiber.Ctx, cancel context.CancelFunc, release func(), write func(w *bufio.Writer, conn net.Conn)) {
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no") // nginx: do not buffer
	c.Context().Response.SetConnectionClose()
	conn := c.Context().Conn()
	c.Context().SetBodyStreamWriter(fasthttp.StreamWriter(func(w *bufio.Writer) {
		defer release()
		defer cancel()
		defer func() { _ = conn.SetReadDeadline(time.Now()) }() // ends the watcher below
		go func() {
			_ = conn.SetReadDeadline(time.Time{}) // the request's read timeout is over
			var b [1]byte
			_, _ = conn.Read(b[:])
			cancel()
		}()
		write(w, conn)
	}))
}

// writeEvents writes one core message as SSE events — its segments, then the
// job — and flushes them to the client.
func writeEvents(w *bufio.Writer, m *ytcaptionv1.WatchJobResponse) error {
	epoch, _, _ := strings.Cut(m.GetCursor(), ":")
	for _, sg := range m.GetSegments() {
		out := segmentJSON{Seq: sg.GetSeq(), StartMS: sg.GetStartMs(), EndMS: sg.GetEndMs(), Text: sg.GetText(), Speaker: sg.GetSpeaker()}
		for _, wd := range sg.GetWords() {
			out.Words = append(out.Words, wordJSON{StartMS: wd.GetStartMs(), EndMS: wd.GetEndMs(), Text: wd.GetText(), Probability: wd.GetProbability(),
				Speaker: wd.GetSpeaker()})
		}
		if err := writeEvent(w, fmt.Sprintf("%s:%d", epoch, sg.GetSeq()), "segment", out); err != nil {
			return err
		}
	}
	if err := writeEvent(w, m.GetCursor(), "job", jobjson.From(m.GetJob())); err != nil {
		return err
	}
	return w.Flush()
}

func writeEvent(w *bufio.Writer, id, event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", id, event, b)
	return err
}
