package rest

import (
	"github.com/gofiber/fiber/v2"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// model is an entry of OpenAI's list-models response, with what ytcaption
// knows beside it: the engine that runs the model (also as owned_by, the
// field OpenAI uses for who provides a model) and what it can do.
type model struct {
	ID        string   `json:"id"`
	Object    string   `json:"object"`
	Created   int64    `json:"created"`
	OwnedBy   string   `json:"owned_by"`
	Engine    string   `json:"engine"`
	Languages []string `json:"languages,omitempty"`
	Translate bool     `json:"translate"`
	Prompt    bool     `json:"prompt"`
}

// listModels is GET /v1/models: OpenAI's list-models shape over what the
// gpu-nodes seen lately offer. An engine that names no model is listed by
// its engine's name, which a job's engine takes.
func (s *server) listModels(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.ListModelsRequest{})
	defer cancel()
	resp, err := s.Core.Jobs.ListModels(ctx, req)
	if err != nil {
		return err
	}
	data := make([]model, 0, len(resp.Msg.GetModels()))
	for _, m := range resp.Msg.GetModels() {
		id := m.GetModel()
		if id == "" {
			id = m.GetEngine()
		}
		data = append(data, model{ID: id, Object: "model", Created: m.GetFirstSeen().GetSeconds(), OwnedBy: m.GetEngine(),
			Engine: m.GetEngine(), Languages: m.GetLanguages(), Translate: m.GetTranslate(), Prompt: m.GetPrompt()})
	}
	return c.JSON(fiber.Map{"object": "list", "data": data})
}
