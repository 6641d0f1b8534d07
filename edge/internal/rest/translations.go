package rest

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// translation is a job's translation as the REST API shows it.
type translation struct {
	JobID      string            `json:"job_id"`
	Language   string            `json:"language"`
	State      string            `json:"state"`
	Translator string            `json:"translator,omitempty"`
	Characters int64             `json:"characters"`
	Cached     bool              `json:"cached"`
	Error      *translationError `json:"error,omitempty"`
	CreatedAt  *time.Time        `json:"created_at,omitempty"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
}

type translationError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func translationFrom(t *ytcaptionv1.Translation) translation {
	out := translation{JobID: t.GetJobId(), Language: t.GetLanguage(), State: t.GetState(), Translator: t.GetTranslator(),
		Characters: t.GetCharacters(), Cached: t.GetCached()}
	if e := t.GetError(); e != nil {
		out.Error = &translationError{Code: e.GetCode(), Message: e.GetMessage()}
	}
	if t.GetCreatedAt() != nil {
		c := t.GetCreatedAt().AsTime()
		out.CreatedAt = &c
	}
	if t.GetFinishedAt() != nil {
		f := t.GetFinishedAt().AsTime()
		out.FinishedAt = &f
	}
	return out
}

type translationBody struct {
	Language string `json:"language"`
}

// createTranslation asks core for a translation of the job's transcript: 202
// while it is queued or running (poll GET …/translations, or fetch the
// transcript with ?lang= once it has succeeded), 200 when it is done already.
func (s *server) createTranslation(c *fiber.Ctx) error {
	var b translationBody
	if err := s.decodeBody(c, &b); err != nil {
		return err
	}
	ctx, cancel, req := call(s, c, &ytcaptionv1.CreateTranslationRequest{JobId: strings.Clone(c.Params("id")), Language: b.Language})
	defer cancel()
	resp, err := s.Core.Jobs.CreateTranslation(ctx, req)
	if err != nil {
		return err
	}
	t := resp.Msg.GetTranslation()
	status := fiber.StatusAccepted
	if t.GetState() == "succeeded" || t.GetState() == "failed" {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(translationFrom(t))
}

func (s *server) listTranslations(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.ListTranslationsRequest{JobId: strings.Clone(c.Params("id"))})
	defer cancel()
	resp, err := s.Core.Jobs.ListTranslations(ctx, req)
	if err != nil {
		return err
	}
	out := struct {
		Translations []translation `json:"translations"`
	}{Translations: []translation{}}
	for _, t := range resp.Msg.GetTranslations() {
		out.Translations = append(out.Translations, translationFrom(t))
	}
	return c.JSON(out)
}
