// Package translate turns a finished transcript into another language, cue by
// cue, so every cue keeps its timing: through a Translator (an
// OpenAI-compatible chat-completions server, LibreTranslate or DeepL, chosen
// by the operator), and a Worker that runs the translations users asked for,
// leased in the store so a core that dies leaves them to another.
package translate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/backoff"
)

// Batch is one request to a translator: Texts to translate, in order, with
// the cues just before and after them as context, which are not translated.
type Batch struct {
	Source, Target string // ISO 639-1; Source "" lets the translator detect it
	Texts          []string
	Before, After  []string
}

// Translator translates a batch into exactly len(b.Texts) texts, in order.
type Translator interface {
	// Name identifies the translator and its model in the translation cache:
	// the same transcript, language and Name reuse a translation.
	Name() string
	Translate(ctx context.Context, b Batch) ([]string, error)
}

// cueAligner is a Translator that keeps a batch's texts apart however a
// sentence runs across them (a language model told to): it gets cues.
// Others (DeepL, LibreTranslate) translate each text on its own, so they get
// whole sentences, which are then shared out across the sentence's cues.
type cueAligner interface{ alignsCues() bool }

// Bounds on what is sent and what is taken back.
const (
	// MaxCueChars is the longest cue translated; an engine's segment is a
	// sentence or two.
	MaxCueChars = 2000
	// MaxTranscriptChars bounds one translation (four hours of fast speech
	// is about 250 000 characters).
	MaxTranscriptChars = 1_000_000
	// MaxResponseBytes is the most of a translator's answer read.
	MaxResponseBytes = 4 << 20
	// contextCues are the neighbouring cues sent on each side of a batch.
	contextCues = 3
	// maxSentenceCues ends a sentence that never ends: a transcript without
	// punctuation still goes out in pieces.
	maxSentenceCues = 6
)

// LanguageRE is a target language: an ISO 639-1 code, or one with a region
// or script ("pt-BR", "zh-Hans") — nothing a path or a prompt could carry.
var LanguageRE = regexp.MustCompile(`^[a-z]{2}(-[A-Za-z]{2,4})?$`)

// Limits shape batches for one translator.
type Limits struct {
	MaxTexts int // texts per request
	MaxChars int // characters of text per request, context excluded
}

// limits of a translator; the defaults suit a chat model's context window.
func limitsOf(t Translator) Limits {
	if l, ok := t.(interface{ limits() Limits }); ok {
		return l.limits()
	}
	return Limits{MaxTexts: 40, MaxChars: 6000}
}

// Chars is what a transcript costs to translate: the characters of its cues.
func Chars(t job.Transcript) int64 {
	var n int64
	for _, s := range t.Segments {
		n += int64(utf8.RuneCountInString(s.Text))
	}
	return n
}

// Transcript translates t into target with tr: the result has t's segments,
// timings and count, with translated texts and no word timings (the words
// of a translation are not the ones spoken).
func Transcript(ctx context.Context, tr Translator, t job.Transcript, target string) (job.Transcript, error) {
	if !LanguageRE.MatchString(target) {
		return job.Transcript{}, job.Errorf(job.CodeInvalidArgument, "language %q is not an ISO 639-1 code", target)
	}
	if Chars(t) > MaxTranscriptChars {
		return job.Transcript{}, job.Errorf(job.CodeInvalidArgument, "the transcript has more than %d characters to translate", MaxTranscriptChars)
	}
	texts := make([]string, len(t.Segments))
	for i, s := range t.Segments {
		texts[i] = strings.TrimSpace(s.Text)
		if utf8.RuneCountInString(texts[i]) > MaxCueChars {
			return job.Transcript{}, job.Errorf(job.CodeInvalidArgument, "cue %d has more than %d characters", i+1, MaxCueChars)
		}
	}
	source := t.Language
	if source == "auto" || !LanguageRE.MatchString(source) {
		source = ""
	}
	out, err := translateAll(ctx, tr, source, target, texts)
	if err != nil {
		return job.Transcript{}, err
	}
	res := t
	res.Language = target
	res.Segments = make([]job.Segment, len(t.Segments))
	for i, s := range t.Segments {
		res.Segments[i] = job.Segment{Seq: s.Seq, StartMS: s.StartMS, EndMS: s.EndMS, Text: out[i]}
	}
	return res, nil
}

// translateAll translates texts, cue for cue.
func translateAll(ctx context.Context, tr Translator, source, target string, texts []string) ([]string, error) {
	if a, ok := tr.(cueAligner); ok && a.alignsCues() {
		units := make([]unit, len(texts))
		for i := range texts {
			units[i] = unit{first: i, n: 1}
		}
		return run(ctx, tr, source, target, texts, units)
	}
	return run(ctx, tr, source, target, texts, sentences(texts))
}

// unit is what a translator gets as one text: cues first..first+n-1 joined.
type unit struct{ first, n int }

func (u unit) text(texts []string) string {
	return strings.Join(nonEmpty(texts[u.first:u.first+u.n]), " ")
}

func nonEmpty(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// sentences groups cues into sentences: a sentence ends with a cue whose
// text ends in a full stop, or after maxSentenceCues cues.
func sentences(texts []string) []unit {
	var units []unit
	start := 0
	for i, t := range texts {
		if endsSentence(t) || i-start+1 >= maxSentenceCues || i == len(texts)-1 {
			units = append(units, unit{first: start, n: i - start + 1})
			start = i + 1
		}
	}
	return units
}

func endsSentence(s string) bool {
	s = strings.TrimRight(strings.TrimSpace(s), `"'”’»)]`)
	r, _ := utf8.DecodeLastRuneInString(s)
	return strings.ContainsRune(".!?…。！？", r)
}

// run translates units in batches and shares each unit's translation out
// across its cues.
func run(ctx context.Context, tr Translator, source, target string, texts []string, units []unit) ([]string, error) {
	lim := limitsOf(tr)
	out := make([]string, len(texts))
	for i := 0; i < len(units); {
		j, chars := i, 0
		for j < len(units) && j-i < lim.MaxTexts {
			c := utf8.RuneCountInString(units[j].text(texts))
			if j > i && chars+c > lim.MaxChars {
				break
			}
			chars += c
			j++
		}
		if err := batch(ctx, tr, source, target, texts, units, i, j, out); err != nil {
			return nil, err
		}
		i = j
	}
	return out, nil
}

// batch translates units[i:j] into out, halving the batch when the
// translator's answer does not fit (a model that merged or dropped a line).
func batch(ctx context.Context, tr Translator, source, target string, texts []string, units []unit, i, j int, out []string) error {
	b := Batch{Source: source, Target: target}
	var idx []int // the units sent; empty ones are not
	for k := i; k < j; k++ {
		if t := units[k].text(texts); t != "" {
			b.Texts = append(b.Texts, t)
			idx = append(idx, k)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	for k := max(0, units[i].first-contextCues); k < units[i].first; k++ {
		b.Before = append(b.Before, texts[k])
	}
	end := units[j-1].first + units[j-1].n
	for k := end; k < min(len(texts), end+contextCues); k++ {
		b.After = append(b.After, texts[k])
	}
	got, err := call(ctx, tr, b)
	if err == nil {
		err = check(b.Texts, got)
	}
	if err != nil {
		var bad *badAnswer
		if errors.As(err, &bad) && j-i > 1 {
			mid := i + (j-i)/2
			if err := batch(ctx, tr, source, target, texts, units, i, mid, out); err != nil {
				return err
			}
			return batch(ctx, tr, source, target, texts, units, mid, j, out)
		}
		return err
	}
	for n, k := range idx {
		u := units[k]
		parts := share(got[n], texts[u.first:u.first+u.n])
		copy(out[u.first:], parts)
	}
	return nil
}

// badAnswer is a translator's answer that does not fit the batch: the wrong
// number of texts, or a text far longer than its source.
type badAnswer struct{ msg string }

func (e *badAnswer) Error() string { return "translator's answer: " + e.msg }

// check validates an answer against what was asked.
func check(asked, got []string) error {
	if len(got) != len(asked) {
		return &badAnswer{fmt.Sprintf("%d texts for %d asked", len(got), len(asked))}
	}
	for i, g := range got {
		// A translation runs longer than its source, but not ten times: a
		// model that rambles or answers the text instead of translating it.
		if n := utf8.RuneCountInString(g); n > 4*utf8.RuneCountInString(asked[i])+200 {
			return &badAnswer{fmt.Sprintf("text %d is %d characters for %d", i+1, n, utf8.RuneCountInString(asked[i]))}
		}
		if strings.TrimSpace(g) == "" {
			return &badAnswer{fmt.Sprintf("text %d is empty", i+1)}
		}
	}
	return nil
}

// attempts a batch gets against a translator failing retryably.
const attempts = 3

// call asks tr, retrying what is retryable (rate limits, 5xx, network).
func call(ctx context.Context, tr Translator, b Batch) ([]string, error) {
	for a := 1; ; a++ {
		got, err := tr.Translate(ctx, b)
		var he *HTTPError
		retry := err != nil && ctx.Err() == nil && (!errors.As(err, &he) || he.Retryable())
		var bad *badAnswer
		if errors.As(err, &bad) {
			retry = false
		}
		if !retry || a == attempts {
			return got, err
		}
		backoff.Sleep(ctx, backoff.Full(a, time.Second, 20*time.Second))
	}
}

// share splits a unit's translation across its cues in proportion to their
// source lengths, at spaces where the language has them.
func share(translated string, cues []string) []string {
	parts := make([]string, len(cues))
	var idx []int
	total := 0
	for i, c := range cues {
		if c != "" {
			idx = append(idx, i)
			total += utf8.RuneCountInString(c)
		}
	}
	if len(idx) <= 1 {
		if len(idx) == 1 {
			parts[idx[0]] = strings.TrimSpace(translated)
		}
		return parts
	}
	rs := []rune(strings.TrimSpace(translated))
	pos, acc := 0, 0
	for n, i := range idx {
		if n == len(idx)-1 {
			parts[i] = strings.TrimSpace(string(rs[pos:]))
			break
		}
		acc += utf8.RuneCountInString(cues[i])
		cut := max(pos, len(rs)*acc/total)
		cut = nearestSpace(rs, cut, pos)
		parts[i] = strings.TrimSpace(string(rs[pos:cut]))
		pos = cut
	}
	return parts
}

// nearestSpace moves cut to the closest space after from, if the text has
// one within reach; a language written without spaces is cut where it falls.
func nearestSpace(rs []rune, cut, from int) int {
	for d := 0; d < 40; d++ {
		if c := cut - d; c > from && c < len(rs) && unicode.IsSpace(rs[c]) {
			return c
		}
		if c := cut + d; c > from && c < len(rs) && unicode.IsSpace(rs[c]) {
			return c
		}
	}
	return min(cut, len(rs))
}

// HTTPError is a translator's non-2xx answer.
type HTTPError struct {
	Status int
	Body   string // the first bytes, for the log
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("translator answered %d: %s", e.Status, e.Body)
}

// Retryable: rate limits and the server's own failures pass; the rest
// (a bad key, a refused language) would fail again.
func (e *HTTPError) Retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Config chooses and reaches a translator.
type Config struct {
	Kind    string // "openai", "libretranslate" or "deepl"
	URL     string // the server's base URL (operator configuration, never a user's)
	Key     string // API key; "" for servers without one
	Model   string // the chat model (openai only)
	Timeout time.Duration
}

// Kinds are the translators New knows.
var Kinds = []string{"openai", "libretranslate", "deepl"}

// New returns the translator cfg names; a Kind of "" is none (nil, nil).
func New(cfg Config) (Translator, error) {
	if cfg.Kind == "" {
		return nil, nil
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	c := newHTTP(cfg.Timeout)
	base := strings.TrimRight(cfg.URL, "/")
	switch cfg.Kind {
	case "openai":
		if base == "" || cfg.Model == "" {
			return nil, errors.New("translator openai needs a URL and a model")
		}
		return &OpenAI{URL: base, Key: cfg.Key, Model: cfg.Model, HTTP: c}, nil
	case "libretranslate":
		if base == "" {
			return nil, errors.New("translator libretranslate needs a URL")
		}
		return &LibreTranslate{URL: base, Key: cfg.Key, HTTP: c}, nil
	case "deepl":
		if cfg.Key == "" {
			return nil, errors.New("translator deepl needs a key")
		}
		if base == "" {
			base = "https://api.deepl.com"
			if strings.HasSuffix(cfg.Key, ":fx") { // a free plan's key
				base = "https://api-free.deepl.com"
			}
		}
		return &DeepL{URL: base, Key: cfg.Key, HTTP: c}, nil
	}
	return nil, fmt.Errorf("unknown translator %q (one of %s)", cfg.Kind, strings.Join(Kinds, ", "))
}

// newHTTP is a client for an operator's translator: a timeout per request,
// and no redirects (an answer that sends us elsewhere is an error, not a
// place to send transcripts and keys).
func newHTTP(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("translator redirected: not followed")
		},
	}
}

// readBody reads at most MaxResponseBytes of a response, failing past it,
// and turns a non-2xx status into an *HTTPError.
// postJSON posts payload as JSON to url, with the Authorization header auth
// unless it is empty, and returns the answer's body as readBody reads it;
// errors name the translator (who).
func postJSON(ctx context.Context, client *http.Client, who, url, auth string, payload any) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	return readBody(resp)
}

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read translator answer: %w", err)
	}
	if len(b) > MaxResponseBytes {
		return nil, &badAnswer{fmt.Sprintf("larger than %d bytes", MaxResponseBytes)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body := string(b)
		if len(body) > 200 {
			body = body[:200]
		}
		return nil, &HTTPError{Status: resp.StatusCode, Body: body}
	}
	return b, nil
}
