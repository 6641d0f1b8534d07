package rest

import "github.com/gofiber/fiber/v2"

// openAITask is the job task of an OpenAI-style audio request: "" (the
// default, transcribe) for POST /v1/audio/transcriptions, "translate" for
// POST /v1/audio/translations — OpenAI's speech in any language to English
// text, served as a transcription whose task is translate (core refuses it
// with unsupported_option when no gpu-node's engine translates).
func openAITask(c *fiber.Ctx) string {
	if c.Route().Path == translationsPath {
		return "translate"
	}
	return ""
}

// openAITaskName is the task verbose_json names: transcribe or translate.
func openAITaskName(c *fiber.Ctx) string {
	if t := openAITask(c); t != "" {
		return t
	}
	return "transcribe"
}
