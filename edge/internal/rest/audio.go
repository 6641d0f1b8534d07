package rest

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Bounds of an audio relay: the blob store must answer within
// audioHeaderTimeout and then send something every audioIdleTimeout; the
// client must take each write within writeTimeout. A relay that keeps
// moving lasts as long as the audio takes.
const (
	audioHeaderTimeout = 30 * time.Second
	audioIdleTimeout   = time.Minute
)

// newBlobClient is the client audio relays fetch presigned URLs with: core
// made the URL, so no proxy from the environment; no overall timeout (the
// bounds above hold instead), no redirects (a presigned URL answers itself).
func newBlobClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			ResponseHeaderTimeout: audioHeaderTimeout,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// audio serves the caller's job's stored audio (GET /v1/jobs/{id}/audio),
// with Range requests, so a browser's <audio> can seek.
func (s *server) audio(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.GetJobAudioRequest{Id: strings.Clone(c.Params("id"))})
	defer cancel()
	resp, err := s.Core.Jobs.GetJobAudio(ctx, req)
	if err != nil {
		return err
	}
	return s.relayAudio(c, resp.Msg)
}

// singleRange is the one Range form relayed: one range of bytes. Others
// (several ranges, other units) are left out, and the whole file is sent,
// as RFC 9110 lets a server do: a multipart reply is no audio/wav.
var singleRange = regexp.MustCompile(`^bytes=(\d{1,19}-\d{0,19}|-\d{1,19})$`)

// relayAudio streams the audio core presigned (a job's, or a share link's:
// whoever calls it has checked the caller may hear it) to the client,
// passing on a single Range: 200 or 206 with the bytes, 416 for a range
// past the end, 404 audio_not_found when the blob is gone. The body passes
// through in chunks, never whole in memory, with Content-Length so a player
// knows the file's size.
func (s *server) relayAudio(c *fiber.Ctx, a *ytcaptionv1.GetJobAudioResponse) error {
	// The relay outlives this handler (fasthttp sends the body afterwards):
	// its context ends when the body is closed, or the blob store stalls.
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.GetUrl(), nil)
	if err != nil {
		cancel()
		return err
	}
	if r := strings.TrimSpace(c.Get(fiber.HeaderRange)); singleRange.MatchString(r) {
		req.Header.Set(fiber.HeaderRange, r)
	}
	resp, err := s.blobs.Do(req)
	if err != nil {
		cancel()
		return codedError(errcode.Unavailable, "the audio store did not answer; retry shortly")
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
	case http.StatusRequestedRangeNotSatisfiable:
		_ = resp.Body.Close()
		cancel()
		if cr := resp.Header.Get(fiber.HeaderContentRange); cr != "" {
			c.Set(fiber.HeaderContentRange, cr)
		}
		return newError(http.StatusRequestedRangeNotSatisfiable, errcode.InvalidArgument, "the range asked for is past the end of the audio")
	case http.StatusNotFound:
		_ = resp.Body.Close()
		cancel()
		return codedError(errcode.AudioNotFound, "the job's audio is gone: it was removed when its retention period ended")
	default:
		_ = resp.Body.Close()
		cancel()
		return codedError(errcode.Unavailable, "the audio store refused the request ("+strconv.Itoa(resp.StatusCode)+"); retry shortly")
	}
	c.Status(resp.StatusCode)
	c.Set(fiber.HeaderContentType, a.GetContentType())
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	for _, h := range []string{fiber.HeaderContentRange, fiber.HeaderLastModified, fiber.HeaderETag} {
		if v := resp.Header.Get(h); v != "" {
			c.Set(h, v)
		}
	}
	if c.Method() == fiber.MethodHead {
		_ = resp.Body.Close()
		cancel()
		c.Response().Header.SetContentLength(int(resp.ContentLength))
		return nil
	}
	c.Context().SetBodyStream(newRelayBody(resp.Body, c.Context().Conn(), cancel), int(resp.ContentLength))
	return nil
}

// relayBody is a relayed body as fasthttp reads it: each read pushes the
// client connection's write deadline forward (the listener's WriteTimeout
// would end a long file; only a client that stops reading is cut off) and
// restarts the watchdog that ends a relay the blob store stopped feeding.
// fasthttp closes it when the reply is done or the client went away.
type relayBody struct {
	body  io.ReadCloser
	conn  net.Conn
	stall *time.Timer
	stop  context.CancelFunc
	once  sync.Once
}

func newRelayBody(body io.ReadCloser, conn net.Conn, stop context.CancelFunc) *relayBody {
	return &relayBody{body: body, conn: conn, stop: stop, stall: time.AfterFunc(audioIdleTimeout, stop)}
}

func (r *relayBody) Read(p []byte) (int, error) {
	r.stall.Reset(audioIdleTimeout)
	_ = r.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return r.body.Read(p)
}

func (r *relayBody) Close() error {
	var err error
	r.once.Do(func() {
		r.stall.Stop()
		err = r.body.Close()
		r.stop()
	})
	return err
}
