package api

import (
	"context"
	"fmt"
	"slices"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/translate"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// maxTranslateTo bounds the languages a job may ask translations into at
// creation.
const maxTranslateTo = 5

// checkLanguage validates a translation's target language: its form, never
// a path or anything else a translator's request could carry.
func checkLanguage(lang string) error {
	if !translate.LanguageRE.MatchString(lang) {
		// %.20q: at most 20 characters of what was sent, quoted.
		return job.Errorf(job.CodeInvalidArgument, "language must be an ISO 639-1 code such as \"de\" (optionally with a region: \"pt-BR\"), got %.20q", lang)
	}
	return nil
}

// checkTranslateTo validates a new job's translate_to and says whether the
// server can translate at all.
func (s *JobService) checkTranslateTo(langs []string) error {
	if len(langs) == 0 {
		return nil
	}
	if len(langs) > maxTranslateTo {
		return job.Errorf(job.CodeInvalidArgument, "translate_to takes at most %d languages, got %d", maxTranslateTo, len(langs))
	}
	for i, l := range langs {
		if err := checkLanguage(l); err != nil {
			return err
		}
		if slices.Contains(langs[:i], l) {
			return job.Errorf(job.CodeInvalidArgument, "translate_to names %q twice", l)
		}
	}
	return s.translatorConfigured()
}

func (s *JobService) translatorConfigured() error {
	if s.translations == nil {
		return job.Errorf(errcode.TranslationUnavailable, "this server has no translator configured")
	}
	return nil
}

// checkTranslationQuota refuses a new job asking for translations when the
// user's translation characters of the month are used up.
func (s *JobService) checkTranslationQuota(ctx context.Context, langs []string) error {
	if len(langs) == 0 {
		return nil
	}
	u, err := s.store.GetTranslationUsage(ctx, userID(ctx))
	if err != nil {
		return err
	}
	return u.Check(0, 0)
}

// requestTranslations queues a new job's translations; asked again (a
// replayed creation), it finds them queued already.
func (s *JobService) requestTranslations(ctx context.Context, j job.Job, langs []string) error {
	for _, l := range langs {
		if _, _, err := s.store.RequestTranslation(ctx, j.UserID, j.ID, l, 0); err != nil {
			return err
		}
	}
	return nil
}

func (s *JobService) CreateTranslation(ctx context.Context, req *connect.Request[ytcaptionv1.CreateTranslationRequest]) (*connect.Response[ytcaptionv1.CreateTranslationResponse], error) {
	t, created, err := s.createTranslation(ctx, req.Msg.GetJobId(), req.Msg.GetLanguage())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	if created {
		s.translations.Wake()
		s.log.InfoContext(ctx, "translation requested", "job_id", t.JobID, "language", t.Language)
	}
	return connect.NewResponse(&ytcaptionv1.CreateTranslationResponse{Translation: translationToProto(t), Created: created}), nil
}

func (s *JobService) createTranslation(ctx context.Context, id, lang string) (store.Translation, bool, error) {
	if err := checkLanguage(lang); err != nil {
		return store.Translation{}, false, err
	}
	if err := s.translatorConfigured(); err != nil {
		return store.Translation{}, false, err
	}
	j, err := s.store.GetJob(ctx, userID(ctx), id)
	if err != nil {
		return store.Translation{}, false, err
	}
	var chars int64 // unknown until the transcript is done
	switch {
	case j.ParentID != "":
		return store.Translation{}, false, &job.Error{Code: job.CodeNotFound, Message: fmt.Sprintf("no job %s", id)}
	case j.Status == job.StatusFailed:
		return store.Translation{}, false, job.Errorf(job.CodeConflict, "job %s failed: it has no transcript to translate", j.ID)
	case j.Status == job.StatusSucceeded || j.Status == job.StatusCancelled:
		t, err := s.transcript(ctx, id, new(int32)) // translations are of the machine's cues
		if err != nil {
			return store.Translation{}, false, err
		}
		if t.Language == lang {
			return store.Translation{}, false, job.Errorf(job.CodeInvalidArgument, "the transcript is in %s already", lang)
		}
		chars = translate.Chars(t)
		if chars > translate.MaxTranscriptChars {
			return store.Translation{}, false, job.Errorf(job.CodeInvalidArgument, "the transcript has %d characters; at most %d are translated", chars, translate.MaxTranscriptChars)
		}
	}
	return s.store.RequestTranslation(ctx, userID(ctx), id, lang, chars)
}

func (s *JobService) ListTranslations(ctx context.Context, req *connect.Request[ytcaptionv1.ListTranslationsRequest]) (*connect.Response[ytcaptionv1.ListTranslationsResponse], error) {
	ts, err := s.store.ListTranslations(ctx, userID(ctx), req.Msg.GetJobId())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	resp := &ytcaptionv1.ListTranslationsResponse{Translations: []*ytcaptionv1.Translation{}}
	for _, t := range ts {
		resp.Translations = append(resp.Translations, translationToProto(t))
	}
	return connect.NewResponse(resp), nil
}

// translated is a job's transcript t in lang: its own cues and timings
// (and speakers) with the translation's texts.
func (s *JobService) translated(ctx context.Context, t job.Transcript, lang string) (job.Transcript, error) {
	if err := checkLanguage(lang); err != nil {
		return job.Transcript{}, err
	}
	id := t.JobID
	tr, texts, err := s.store.GetTranslation(ctx, userID(ctx), id, lang)
	if err != nil {
		return job.Transcript{}, err
	}
	switch tr.State {
	case store.TranslationFailed:
		return job.Transcript{}, job.Errorf(errcode.TranslationFailed, "the translation into %s failed (%s: %s); ask for it again with POST /v1/jobs/%s/translations", lang, tr.ErrorCode, tr.ErrorMessage, id)
	case store.TranslationSucceeded:
	default:
		return job.Transcript{}, job.Errorf(errcode.TranslationNotReady, "the translation into %s is %s; it is served once it has succeeded", lang, tr.State)
	}
	if len(texts) != len(t.Segments) {
		return job.Transcript{}, fmt.Errorf("translation %s of job %s has %d texts for %d segments", lang, id, len(texts), len(t.Segments))
	}
	out := t
	out.Language = lang
	out.Segments = make([]job.Segment, len(t.Segments))
	for i, sg := range t.Segments {
		sg.Text, sg.Words = texts[i], nil
		out.Segments[i] = sg
	}
	return out, nil
}

// addTranslationQuota adds the user's translation characters to q.
func (s *JobService) addTranslationQuota(ctx context.Context, q *ytcaptionv1.Quota) error {
	u, err := s.store.GetTranslationUsage(ctx, userID(ctx))
	if err != nil {
		return err
	}
	q.MonthlyTranslationChars, q.UsedTranslationChars, q.PendingTranslationChars = u.Limit, u.Used, u.Pending
	return nil
}

func translationToProto(t store.Translation) *ytcaptionv1.Translation {
	p := &ytcaptionv1.Translation{JobId: t.JobID, Language: t.Language, State: t.State, Translator: t.Translator,
		Characters: t.Characters, Cached: t.Cached, CreatedAt: ts(t.CreatedAt), FinishedAt: ts(t.FinishedAt)}
	if t.ErrorCode != "" {
		p.Error = &ytcaptionv1.JobError{Code: t.ErrorCode, Message: t.ErrorMessage}
	}
	return p
}
