package translate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// OpenAI translates with a chat model on any server that speaks OpenAI's
// chat-completions API (vLLM, Ollama, OpenAI): POST {URL}/v1/chat/completions
// with the batch's cues numbered in JSON, the neighbouring cues as context,
// and a JSON object asked back. The answer must hold exactly the cues sent.
type OpenAI struct {
	URL   string // base URL, without /v1
	Key   string // bearer token; "" for servers without one
	Model string
	HTTP  *http.Client
}

func (o *OpenAI) Name() string     { return "openai:" + o.Model }
func (o *OpenAI) alignsCues() bool { return true }
func (o *OpenAI) limits() Limits   { return Limits{MaxTexts: 40, MaxChars: 6000} }
func (o *OpenAI) endpoint() string { return o.URL + "/v1/chat/completions" }
func languageName(code string) string {
	if code == "" {
		return "the language it is in"
	}
	return fmt.Sprintf("the language with ISO 639-1 code %q", code)
}

// The instructions. A sentence that runs across cues is translated as one
// and split at the same place, so each cue still says what is spoken while
// it shows.
const systemPrompt = `You translate subtitles from %s into %s.
The user sends JSON: "cues", an array of {"id", "text"} to translate, and "before" and "after", the subtitles around them, for context only: never translate or return those.
Translate every cue. Keep each cue's meaning in that cue: when a sentence runs across several cues, translate the sentence as a whole and split the translation at the same places, so each cue holds the part spoken while it shows. Never merge, split, drop or reorder cues.
Answer with a JSON object only: {"cues": [{"id": <the same id>, "text": "<the translation>"}, ...]}, one entry per cue sent, the same ids.`

type chatCue struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

type chatInput struct {
	Before []string  `json:"before"`
	Cues   []chatCue `json:"cues"`
	After  []string  `json:"after"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model          string          `json:"model"`
	Messages       []chatMessage   `json:"messages"`
	Temperature    float64         `json:"temperature"`
	ResponseFormat *responseFormat `json:"response_format,omitempty"`
}

type responseFormat struct {
	Type string `json:"type"`
}

type chatResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

func (o *OpenAI) Translate(ctx context.Context, b Batch) ([]string, error) {
	in := chatInput{Before: nonNil(b.Before), After: nonNil(b.After)}
	for i, t := range b.Texts {
		in.Cues = append(in.Cues, chatCue{ID: i + 1, Text: t})
	}
	user, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	auth := ""
	if o.Key != "" {
		auth = "Bearer " + o.Key
	}
	raw, err := postJSON(ctx, o.HTTP, "openai translator", o.endpoint(), auth, chatRequest{
		Model: o.Model, Temperature: 0, ResponseFormat: &responseFormat{Type: "json_object"},
		Messages: []chatMessage{
			{Role: "system", Content: fmt.Sprintf(systemPrompt, languageName(b.Source), languageName(b.Target))},
			{Role: "user", Content: string(user)},
		},
	})
	if err != nil {
		return nil, err
	}
	var cr chatResponse
	if err := json.Unmarshal(raw, &cr); err != nil || len(cr.Choices) == 0 {
		return nil, &badAnswer{"not a chat completion"}
	}
	return parseCues(cr.Choices[0].Message.Content, len(b.Texts))
}

// parseCues reads the model's JSON (fenced in Markdown or not) and returns
// the texts in id order, refusing anything but ids 1..n, each once.
func parseCues(content string, n int) ([]string, error) {
	content = strings.TrimSpace(content)
	content = strings.TrimPrefix(content, "```json")
	content = strings.TrimPrefix(content, "```")
	content = strings.TrimSuffix(strings.TrimSpace(content), "```")
	var out struct {
		Cues []chatCue `json:"cues"`
	}
	if err := json.Unmarshal([]byte(content), &out); err != nil {
		return nil, &badAnswer{"not the JSON asked for"}
	}
	if len(out.Cues) != n {
		return nil, &badAnswer{fmt.Sprintf("%d cues for %d sent", len(out.Cues), n)}
	}
	texts := make([]string, n)
	seen := make([]bool, n)
	for _, c := range out.Cues {
		if c.ID < 1 || c.ID > n || seen[c.ID-1] {
			return nil, &badAnswer{fmt.Sprintf("cue id %d is not one sent, or twice", c.ID)}
		}
		seen[c.ID-1] = true
		texts[c.ID-1] = strings.TrimSpace(c.Text)
	}
	return texts, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
