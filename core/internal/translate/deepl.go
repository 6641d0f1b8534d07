package translate

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// DeepL translates with DeepL's API: POST {URL}/v2/translate, the key in
// "Authorization: DeepL-Auth-Key", text as an array, target_lang (and
// source_lang) upper-case, and the neighbouring cues as context, which DeepL
// reads but neither translates nor bills. Each text is translated on its
// own, so it gets whole sentences.
type DeepL struct {
	URL  string // https://api.deepl.com, or api-free for a free plan's key
	Key  string
	HTTP *http.Client
}

func (d *DeepL) Name() string { return "deepl" }

// DeepL takes 50 texts and 128 KiB of request at most.
func (d *DeepL) limits() Limits { return Limits{MaxTexts: 50, MaxChars: 20000} }

type deeplRequest struct {
	Text       []string `json:"text"`
	TargetLang string   `json:"target_lang"`
	SourceLang string   `json:"source_lang,omitempty"`
	Context    string   `json:"context,omitempty"`
}

// deeplTarget is DeepL's name of a target language: upper-case, and English
// and Portuguese with the variant DeepL requires of a target.
func deeplTarget(lang string) string {
	switch l := strings.ToUpper(lang); l {
	case "EN":
		return "EN-US"
	case "PT":
		return "PT-PT"
	default:
		return l
	}
}

func (d *DeepL) Translate(ctx context.Context, b Batch) ([]string, error) {
	src, _, _ := strings.Cut(b.Source, "-") // a source has no variant
	raw, err := postJSON(ctx, d.HTTP, "deepl", d.URL+"/v2/translate", "DeepL-Auth-Key "+d.Key, deeplRequest{
		Text: b.Texts, TargetLang: deeplTarget(b.Target), SourceLang: strings.ToUpper(src),
		Context: strings.TrimSpace(strings.Join(b.Before, " ") + " " + strings.Join(b.After, " ")),
	})
	if err != nil {
		return nil, err
	}
	var out struct {
		Translations []struct {
			Text string `json:"text"`
		} `json:"translations"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, &badAnswer{"not DeepL's answer"}
	}
	texts := make([]string, len(out.Translations))
	for i, t := range out.Translations {
		texts[i] = t.Text
	}
	return texts, nil
}
