package rest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// batchPoll is how often a batch's event stream asks core for the batch.
// A batch changes as its jobs do, over minutes: a second's delay is not
// worth a watch stream in core per batch.
const batchPoll = time.Second

// batchEvents streams a batch as Server-Sent Events: a "batch" event (the
// batch as GET /v1/batches/{id} shows it) at once and whenever it changes —
// status, counts — until it has ended. A stream counts against the key's
// max_streams like a job's.
func (s *server) batchEvents(c *fiber.Ctx) error {
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
	who, id := caller(c), strings.Clone(c.Params("id"))
	ctx, cancel := context.WithCancel(context.Background())
	get := func() (*ytcaptionv1.Batch, error) {
		cctx, ccancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
		defer ccancel()
		resp, err := s.Core.Batches.GetBatch(cctx, gate.Forward(who, &ytcaptionv1.GetBatchRequest{Id: id}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetBatch(), nil
	}
	// The first read answers the HTTP question (does the batch exist, is it
	// the caller's?) before the 200 and the stream begin.
	first, err := get()
	if err != nil {
		cancel()
		return err
	}
	streaming = true
	serveSSE(c, cancel, release, func(w *bufio.Writer, conn net.Conn) {
		var last []byte
		quiet := time.Now()
		for b := first; ; {
			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if b != nil {
				out := batchFrom(b)
				data, _ := json.Marshal(out)
				if string(data) != string(last) {
					if _, err := fmt.Fprintf(w, "event: batch\ndata: %s\n\n", data); err != nil || w.Flush() != nil {
						return
					}
					last, quiet = data, time.Now()
				}
				switch out.Status {
				case "done", "failed", "cancelled":
					return
				}
			}
			if time.Since(quiet) >= keepAlive {
				if _, err := w.WriteString(": keep-alive\n\n"); err != nil || w.Flush() != nil {
					return
				}
				quiet = time.Now()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(batchPoll/2 + rand.N(batchPoll/2+1)):
			}
			var err error
			if b, err = get(); err != nil && ctx.Err() == nil {
				b = nil // core away for a moment: ask again next time
			}
		}
	})
	return nil
}
