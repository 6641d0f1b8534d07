package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// targetLanguage is a translation's language: ISO 639-1, with a region or
// script at most ("pt-BR", "zh-Hans").
var targetLanguage = regexp.MustCompile(`^[a-z]{2}(-[A-Za-z]{2,4})?$`)

// maxTranslateTo is how many languages one job may be translated into at once.
const maxTranslateTo = 5

// translation is a job's translation as the server shows it.
type translation struct {
	JobID      string `json:"job_id"`
	Language   string `json:"language"`
	State      string `json:"state"`
	Translator string `json:"translator"`
	Characters int64  `json:"characters"`
	Cached     bool   `json:"cached"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw json.RawMessage
}

// parseLanguages reads --translate-to: comma-separated languages.
func parseLanguages(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, l := range strings.Split(s, ",") {
		l = strings.TrimSpace(l)
		if !targetLanguage.MatchString(l) {
			return nil, usagef("--translate-to takes ISO 639-1 codes such as de or pt-BR, got %q", l)
		}
		out = append(out, l)
	}
	if len(out) > maxTranslateTo {
		return nil, usagef("--translate-to takes at most %d languages, got %d", maxTranslateTo, len(out))
	}
	return out, nil
}

const translateAbout = `Asks the server to translate a job's transcript into LANG (an ISO 639-1
code: de, fr, pt-BR), waits until it is done and writes the translated
captions to -o FILE or stdout: the job's own cues, at the same times, in any
format. A translation asked for before is not made again. Exits 1 when the
translation fails (its error code is printed), 4 when the server has no
translator (translation_unavailable).`

func translateCmd(ctx context.Context, args []string, e env) error {
	c := newCommand("translate", "translate JOB LANG [--format F] [-o FILE] [--no-wait] [--json]", translateAbout, []string{"JOB", "LANG"}, e)
	format := c.fs.String("format", "srt", formatUsage)
	out := c.fs.String("o", "", "write the captions to `FILE` (default: stdout)")
	noWait := c.fs.Bool("no-wait", false, "ask for the translation, print its state and return")
	asJSON := c.fs.Bool("json", false, "print the translation as JSON on stdout (captions go to -o FILE only)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	id, lang := pos[0], pos[1]
	if !targetLanguage.MatchString(lang) {
		return c.usageErr("LANG must be an ISO 639-1 code such as de or pt-BR, got %q", lang)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *asJSON && *out == "" && !*noWait {
		return usagef("translate --json needs -o FILE: stdout carries the JSON answer")
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	t, err := requestTranslation(ctx, cl, id, lang)
	if err != nil {
		return jobError(id, err)
	}
	if !*noWait {
		if t, err = waitTranslation(ctx, cl, t, e); err != nil {
			return err
		}
		if err := saveTranslation(ctx, cl, id, lang, *format, *out, !*asJSON, e); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, t.raw)
	}
	if *noWait {
		fmt.Fprintf(e.stdout, "%s %s: %s\n", id, lang, t.State)
	}
	return nil
}

func requestTranslation(ctx context.Context, cl *client, id, lang string) (*translation, error) {
	t := new(translation)
	b, err := cl.call(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/translations", map[string]string{"language": lang}, nil, t)
	t.raw = b
	return t, err
}

// waitTranslation polls the job's translations until t has succeeded, or
// fails with the reason when it failed.
func waitTranslation(ctx context.Context, cl *client, t *translation, e env) (*translation, error) {
	fmt.Fprintf(e.stderr, "translating job %s into %s…\n", t.JobID, t.Language)
	for {
		switch t.State {
		case "succeeded":
			return t, nil
		case "failed":
			code, msg := "translation_failed", ""
			if t.Error != nil {
				code, msg = t.Error.Code, t.Error.Message
			}
			return t, &explained{fmt.Sprintf("the translation of job %s into %s failed: %s: %s", t.JobID, t.Language, code, msg),
				&apiError{Status: http.StatusConflict, Code: code, Message: msg}}
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-e.interrupts:
			return t, &interrupted{t.JobID}
		case <-time.After(time.Second/2 + rand.N(time.Second)):
		}
		var page struct {
			Translations []json.RawMessage `json:"translations"`
		}
		if _, err := cl.call(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(t.JobID)+"/translations", nil, nil, &page); err != nil {
			return t, err
		}
		for _, raw := range page.Translations {
			var n translation
			if err := json.Unmarshal(raw, &n); err == nil && n.Language == t.Language {
				n.raw = raw
				t = &n
			}
		}
	}
}

// saveTranslation writes a job's translated captions to path, or stdout.
func saveTranslation(ctx context.Context, cl *client, id, lang, format, path string, toStdout bool, e env) error {
	q := url.Values{"format": {format}, "lang": {lang}}
	return saveCaptions(ctx, cl, url.PathEscape(id), q.Encode(), lang+" captions", path, toStdout, e)
}

// translatedName is where transcribe -o FILE --translate-to writes a
// language's captions: clip.srt → clip.de.srt.
func translatedName(path, lang string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "." + lang + ext
}

// saveTranslations asks for a finished job's translations and writes each
// beside out once it is done.
func saveTranslations(ctx context.Context, cl *client, id, format, out string, langs []string, e env) error {
	for _, l := range langs {
		t, err := requestTranslation(ctx, cl, id, l)
		if err != nil {
			return err
		}
		if _, err := waitTranslation(ctx, cl, t, e); err != nil {
			return err
		}
		if err := saveTranslation(ctx, cl, id, l, format, translatedName(out, l), false, e); err != nil {
			return err
		}
	}
	return nil
}
