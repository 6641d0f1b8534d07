package rest

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/jobjson"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// patchBody is what PATCH /v1/jobs/{id} changes: the speakers' names.
type patchBody struct {
	// Label ("Speaker 1") → name ("Alice"); {} removes every name. Core
	// bounds it (32 names of 64 printable characters).
	Speakers *map[string]string `json:"speakers"`
}

// patchJob names the speakers of the caller's job; every transcript format
// shows the names from then on.
func (s *server) patchJob(c *fiber.Ctx) error {
	var b patchBody
	if err := s.decodeBody(c, &b); err != nil {
		return err
	}
	if b.Speakers == nil {
		return codedError(errcode.InvalidArgument, `"speakers" is required: an object of label to name, such as {"Speaker 1": "Alice"}`)
	}
	id := strings.Clone(c.Params("id"))
	ctx, cancel, req := call(s, c, &ytcaptionv1.RenameSpeakersRequest{Id: id, Names: *b.Speakers})
	defer cancel()
	defer s.Finished.Forget(id) // this edge's copy of the job would show the old names
	resp, err := s.Core.Jobs.RenameSpeakers(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(jobjson.From(resp.Msg.GetJob()))
}
