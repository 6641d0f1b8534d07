package translate

import (
	"context"
	"encoding/json"
	"net/http"
)

// LibreTranslate translates with a LibreTranslate server: POST {URL}/translate
// with q as an array of texts, source ("auto" when unknown), target,
// format "text" and api_key; the answer's translatedText is the array of
// translations, in order. It takes no context: it gets whole sentences.
type LibreTranslate struct {
	URL  string
	Key  string // "" for a server without keys
	HTTP *http.Client
}

func (l *LibreTranslate) Name() string   { return "libretranslate" }
func (l *LibreTranslate) limits() Limits { return Limits{MaxTexts: 25, MaxChars: 2000} }

type libreRequest struct {
	Q      []string `json:"q"`
	Source string   `json:"source"`
	Target string   `json:"target"`
	Format string   `json:"format"`
	APIKey string   `json:"api_key,omitempty"`
}

func (l *LibreTranslate) Translate(ctx context.Context, b Batch) ([]string, error) {
	src := b.Source
	if src == "" {
		src = "auto"
	}
	raw, err := postJSON(ctx, l.HTTP, "libretranslate", l.URL+"/translate", "",
		libreRequest{Q: b.Texts, Source: src, Target: b.Target, Format: "text", APIKey: l.Key})
	if err != nil {
		return nil, err
	}
	var out struct {
		TranslatedText []string `json:"translatedText"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, &badAnswer{"not LibreTranslate's answer to an array"}
	}
	return out.TranslatedText, nil
}
