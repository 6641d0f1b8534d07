package rest

import (
	"context"
	"mime"
	"net/netip"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/filename"
	"github.com/ytcaption/ytcaption/internal/sharetoken"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Share links (docs/editing.md): the owner makes, lists and revokes them
// under /v1/jobs/{id}/shares with an API key; anybody holding a link's token
// reads the transcript under /v1/shared/{token}, with no key, limited per
// client address (gate.SharedLimit).

// shareRoutes are the owner's, behind the API key.
func (s *server) shareRoutes(v1 fiber.Router) {
	v1.Post("/jobs/:id/shares", s.createShare)
	v1.Get("/jobs/:id/shares", s.listShares)
	v1.Delete("/jobs/:id/shares/:share_id", s.revokeShare)
}

// sharedRoutes are the public ones. They are registered on the app before
// the /v1 group, so the group's API-key check never runs for them (Fiber
// matches in registration order, and these never call Next).
func (s *server) sharedRoutes(app *fiber.App) {
	app.Get("/v1/shared/:token", s.limitShared, s.getShared)
	app.Get("/v1/shared/:token/transcript", s.limitShared, s.sharedTranscript)
	app.Get("/v1/shared/:token/audio", s.limitShared, s.sharedAudio)
}

// share is a share link as its owner sees it.
type share struct {
	ID        string     `json:"id"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	Revision  *int32     `json:"revision"` // null: the latest when opened
}

func shareFrom(p *ytcaptionv1.Share) share {
	out := share{ID: p.GetId(), CreatedAt: p.GetCreatedAt().AsTime(), ExpiresAt: p.GetExpiresAt().AsTime(), Revision: p.Revision}
	if p.GetRevokedAt() != nil {
		r := p.GetRevokedAt().AsTime()
		out.RevokedAt = &r
	}
	return out
}

type createShareBody struct {
	ExpiresInSeconds int64  `json:"expires_in_seconds"` // 0: 7 days
	Revision         *int32 `json:"revision"`
}

// createdShare is the one reply that holds the link's token.
type createdShare struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	URL       string    `json:"url"` // the web app's page of the link, relative to the edge
	ExpiresAt time.Time `json:"expires_at"`
	Revision  *int32    `json:"revision"`
}

func (s *server) createShare(c *fiber.Ctx) error {
	var b createShareBody
	if len(c.Request().Body()) > 0 { // no body: the defaults
		if err := s.decodeBody(c, &b); err != nil {
			return err
		}
	}
	ctx, cancel, req := call(s, c, &ytcaptionv1.CreateShareRequest{JobId: strings.Clone(c.Params("id")), ExpiresInSeconds: b.ExpiresInSeconds, Revision: b.Revision})
	defer cancel()
	resp, err := s.Core.Jobs.CreateShare(ctx, req)
	if err != nil {
		return err
	}
	sh, token := resp.Msg.GetShare(), resp.Msg.GetToken()
	c.Set(fiber.HeaderCacheControl, "no-store") // the token is in this reply only
	return c.Status(fiber.StatusCreated).JSON(createdShare{ID: sh.GetId(), Token: token, URL: "/s/" + token,
		ExpiresAt: sh.GetExpiresAt().AsTime(), Revision: sh.Revision})
}

func (s *server) listShares(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.ListSharesRequest{JobId: strings.Clone(c.Params("id"))})
	defer cancel()
	resp, err := s.Core.Jobs.ListShares(ctx, req)
	if err != nil {
		return err
	}
	out := struct {
		Shares []share `json:"shares"`
	}{Shares: []share{}}
	for _, sh := range resp.Msg.GetShares() {
		out.Shares = append(out.Shares, shareFrom(sh))
	}
	return c.JSON(out)
}

func (s *server) revokeShare(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.RevokeShareRequest{JobId: strings.Clone(c.Params("id")), ShareId: strings.Clone(c.Params("share_id"))})
	defer cancel()
	if _, err := s.Core.Jobs.RevokeShare(ctx, req); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// limitShared takes a public request from its client address's budget, and
// marks every reply of the public routes: never stored by a browser or a
// proxy (a revoked link must stop answering at once), never sent on as a
// Referer (the URL holds the token), never indexed.
func (s *server) limitShared(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set("X-Robots-Tag", "noindex")
	h, err := s.Gate.LimitShared(c.UserContext(), c.Locals(clientAddrKey{}).(netip.Addr))
	for k := range h {
		c.Set(k, h.Get(k))
	}
	if err != nil {
		return err
	}
	return c.Next()
}

// sharedToken is the route's token, or share_not_found — the same reply as
// core's for an unknown one — when it is malformed: junk never reaches core.
func sharedToken(c *fiber.Ctx) (string, error) {
	token := c.Params("token")
	if !sharetoken.Valid(token) {
		return "", codedError(errcode.ShareNotFound, sharetoken.NotFoundMessage)
	}
	return strings.Clone(token), nil
}

// sharedJob is what GET /v1/shared/{token} shows: nothing of the job's
// owner, its URL, keys or webhooks, nor the token.
type sharedJob struct {
	Job      sharedJobInfo   `json:"job"`
	Segments []sharedSegment `json:"segments"`
	Formats  []string        `json:"formats"` // what …/transcript?format= serves
}

type sharedJobInfo struct {
	ID              string    `json:"id"`
	Title           string    `json:"title"`
	DurationSeconds float64   `json:"duration_seconds"`
	Language        string    `json:"language"`
	CreatedAt       time.Time `json:"created_at"`
	Revision        int32     `json:"revision"`
}

type sharedSegment struct {
	Start   float64 `json:"start"` // seconds
	End     float64 `json:"end"`
	Text    string  `json:"text"`
	Speaker string  `json:"speaker,omitempty"` // the owner's name for the speaker, else its label
}

func (s *server) getShared(c *fiber.Ctx) error {
	token, err := sharedToken(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.Core.Shares.GetSharedJob(ctx, publicRequest(c, &ytcaptionv1.GetSharedJobRequest{Token: token}))
	if err != nil {
		return err
	}
	j := resp.Msg.GetJob()
	out := sharedJob{Job: sharedJobInfo{ID: j.GetId(), Title: j.GetTitle(), DurationSeconds: j.GetDurationSeconds(), Language: j.GetLanguage(),
		CreatedAt: j.GetCreatedAt().AsTime(), Revision: j.GetRevision()}, Segments: []sharedSegment{}, Formats: formatNames()}
	for _, sg := range resp.Msg.GetSegments() {
		out.Segments = append(out.Segments, sharedSegment{Start: float64(sg.GetStartMs()) / 1000, End: float64(sg.GetEndMs()) / 1000,
			Text: sg.GetText(), Speaker: sg.GetSpeaker()})
	}
	return c.JSON(out)
}

// sharedTranscript serves the shared transcript as a file to save, named
// after the media's title.
func (s *server) sharedTranscript(c *fiber.Ctx) error {
	token, err := sharedToken(c)
	if err != nil {
		return err
	}
	msg, ext, err := transcriptRequest(c, "")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.Core.Shares.GetSharedTranscript(ctx, publicRequest(c, &ytcaptionv1.GetSharedTranscriptRequest{Token: token, Transcript: msg}))
	if err != nil {
		return err
	}
	name := filename.Safe(resp.Msg.GetTitle(), "transcript") + "." + ext
	c.Set(fiber.HeaderContentType, resp.Msg.GetContentType())
	c.Set(fiber.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	return c.Send(resp.Msg.GetContent())
}

// sharedAudio relays the shared job's audio, with Range, for the shared
// page's player.
func (s *server) sharedAudio(c *fiber.Ctx) error {
	token, err := sharedToken(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.Core.Shares.GetSharedAudio(ctx, publicRequest(c, &ytcaptionv1.GetSharedAudioRequest{Token: token}))
	if err != nil {
		return err
	}
	return s.relayAudio(c, resp.Msg.GetAudio())
}

// publicRequest wraps msg for core's ShareService: the request id, and no
// user.
func publicRequest[T any](c *fiber.Ctx, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set(gate.HeaderRequestID, c.Locals(requestIDKey{}).(string))
	return req
}

// formatNames are the transcript formats, sorted.
func formatNames() []string {
	out := make([]string, 0, len(formats))
	for name := range formats {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
