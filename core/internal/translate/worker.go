package translate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Owner string        // the lease owner: this core's instance id
	Lease time.Duration // default 1 min; renewed every third of it
	// Poll is how often an idle worker looks for work without a wake-up
	// (translations asked of another replica); default 5 s.
	Poll        time.Duration
	MaxAttempts int // default 3
	// SiteCaptions, when set, fetches a YouTube video's captions in a
	// language: a translation of a transcript that came from the video's
	// captions takes YouTube's own translation of them when its cues are the
	// transcript's, free, before asking the translator.
	SiteCaptions SiteCaptions
}

// SiteCaptions fetches the captions of the video at url in lang from its
// site (on YouTube, machine translations of its tracks included); found is
// false when there are none.
type SiteCaptions func(ctx context.Context, url, lang string) (segs []job.Segment, found bool, err error)

// YouTube names the translations taken from YouTube's own captions.
const YouTube = "youtube"

// Worker runs translations: it claims one at a time from the store under a
// lease it renews, translates the job's transcript, and stores the result.
// A translation whose core died mid-way is claimed again once its lease
// runs out, by any replica (this one, restarted, too).
type Worker struct {
	log   *slog.Logger
	cfg   WorkerConfig
	store *store.Store
	tr    Translator
	wake  chan struct{}
	done  *prometheus.CounterVec
	chars prometheus.Counter
}

// NewWorker returns a worker translating with tr; reg registers its metrics.
func NewWorker(log *slog.Logger, cfg WorkerConfig, st *store.Store, tr Translator, reg prometheus.Registerer) *Worker {
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	w := &Worker{log: log, cfg: cfg, store: st, tr: tr, wake: make(chan struct{}, 1),
		done: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ytcaption_core_translations_total",
			Help: "Translations finished, by result: translated, cached (an earlier translation of the same transcript), youtube (the video's own translated captions), failed.",
		}, []string{"result"}),
		chars: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ytcaption_core_translated_characters_total",
			Help: "Characters of transcripts sent to the translator (cache hits excluded).",
		}),
	}
	if reg != nil {
		reg.MustRegister(w.done, w.chars)
	}
	return w
}

// Wake makes an idle worker look for work now (a translation was asked for).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		did, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "translation worker", "err", err)
		}
		if did {
			continue
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-time.After(w.cfg.Poll/2 + rand.N(w.cfg.Poll/2+1)):
		}
	}
}

// RunOnce claims and runs one translation; did is false when none was due.
func (w *Worker) RunOnce(ctx context.Context) (did bool, err error) {
	t, ok, err := w.store.ClaimTranslation(ctx, w.cfg.Owner, w.cfg.Lease)
	if err != nil || !ok {
		return false, err
	}
	log := w.log.With("translation_id", t.ID, "job_id", t.JobID, "language", t.Language, "attempt", t.Attempt)
	res, err := w.translate(ctx, t)
	switch {
	case errors.Is(err, job.ErrLeaseLost):
		log.WarnContext(ctx, "translation lease lost")
		return true, nil
	case err == nil:
		err = w.store.CompleteTranslation(ctx, t.ID, w.cfg.Owner, res)
		if err == nil {
			result := "translated"
			switch {
			case res.Cached:
				result = "cached"
			case res.Translator == YouTube:
				result = YouTube
			default:
				w.chars.Add(float64(res.Characters))
			}
			w.done.WithLabelValues(result).Inc()
			log.InfoContext(ctx, "translation done", "cached", res.Cached, "characters", res.Characters)
		}
		return true, err
	}
	var e *job.Error
	if !errors.As(err, &e) {
		if ctx.Err() != nil {
			return true, nil // shutting down: the lease runs out and the translation is claimed again
		}
		if t.Attempt < w.cfg.MaxAttempts {
			// The translator failed retryably: the lease running out is the
			// backoff, then any replica tries again.
			log.WarnContext(ctx, "translation attempt failed", "err", err)
			return true, nil
		}
		e = &job.Error{Code: errcode.TranslationFailed, Message: "the translator failed; ask again later", Err: err}
	}
	log.WarnContext(ctx, "translation failed", "code", e.Code, "err", err)
	w.done.WithLabelValues("failed").Inc()
	return true, w.store.FailTranslation(ctx, t.ID, w.cfg.Owner, e)
}

// translate makes t's result, from the cache if it can. Its errors are
// job.ErrLeaseLost, coded *job.Errors (permanent) and others (retryable).
func (w *Worker) translate(ctx context.Context, t store.Translation) (store.TranslationResult, error) {
	if t.Attempt > w.cfg.MaxAttempts {
		return store.TranslationResult{}, job.Errorf(errcode.TranslationFailed, "the translation failed %d times", w.cfg.MaxAttempts)
	}
	j, err := w.store.GetJob(ctx, "", t.JobID)
	if err != nil {
		return store.TranslationResult{}, err
	}
	switch {
	case j.Status == job.StatusFailed:
		return store.TranslationResult{}, job.Errorf(errcode.TranslationFailed, "job %s failed: it has no transcript to translate", j.ID)
	case j.TranscriptExpired:
		return store.TranslationResult{}, job.Errorf(job.CodeExpired, "job %s's transcript was deleted when its retention period ended", j.ID)
	}
	segs, err := w.store.Segments(ctx, j.ID, j.Epoch, -1)
	if err != nil {
		return store.TranslationResult{}, err
	}
	if len(segs) == 0 {
		return store.TranslationResult{}, job.Errorf(errcode.TranslationFailed, "job %s has no transcript to translate", j.ID)
	}
	src := job.Transcript{JobID: j.ID, Language: j.DetectedLanguage, Segments: segs}
	if src.Language == "" {
		src.Language = j.Language
	}
	res := store.TranslationResult{Translator: w.tr.Name(), SourceHash: SourceHash(src), Characters: Chars(src)}
	if texts, ok, err := w.store.CachedTranslation(ctx, res.SourceHash, t.Language, res.Translator); err != nil {
		return res, err
	} else if ok && len(texts) == len(segs) {
		res.Texts, res.Cached = texts, true
		return res, nil
	}
	if texts, ok := w.fromSite(ctx, j, t.Language, segs); ok {
		res.Texts, res.Translator, res.Characters = texts, YouTube, 0
		return res, nil
	}
	u, err := w.store.GetTranslationUsage(ctx, t.UserID)
	if err != nil {
		return res, err
	}
	if err := u.Check(res.Characters, t.Characters); err != nil {
		return res, err
	}

	// Renew the lease while the translator works; losing it stops the work.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		every := w.cfg.Lease / 3
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
			if err := w.store.ExtendTranslation(ctx, t.ID, w.cfg.Owner, w.cfg.Lease); errors.Is(err, job.ErrLeaseLost) {
				cancel(err)
				return
			}
		}
	}()
	out, err := Transcript(ctx, w.tr, src, t.Language)
	if cause := context.Cause(ctx); errors.Is(cause, job.ErrLeaseLost) {
		return res, cause
	}
	if err != nil {
		var bad *badAnswer
		var he *HTTPError
		switch {
		case errors.As(err, &bad):
			return res, &job.Error{Code: errcode.TranslationFailed, Message: "the translator's answer did not fit the transcript", Err: err}
		case errors.As(err, &he) && !he.Retryable():
			return res, &job.Error{Code: errcode.TranslationFailed, Message: "the translator refused the request", Err: err}
		}
		return res, err
	}
	res.Texts = make([]string, len(out.Segments))
	for i, s := range out.Segments {
		res.Texts[i] = s.Text
	}
	return res, nil
}

// fromSite takes YouTube's own captions of the video in lang, when the
// job's transcript is the video's captions and YouTube's track in lang has
// exactly its cues (YouTube's machine translation of the track the
// transcript is). Anything else — no such track, another timing, the site
// refusing — leaves the translation to the translator.
func (w *Worker) fromSite(ctx context.Context, j job.Job, lang string, segs []job.Segment) ([]string, bool) {
	if w.cfg.SiteCaptions == nil || j.SourceKind != job.SourceYouTube ||
		(j.TranscribedFrom != job.FromCaptions && j.TranscribedFrom != job.FromAutomaticCaptions) {
		return nil, false
	}
	theirs, found, err := w.cfg.SiteCaptions(ctx, j.CanonicalURL, lang)
	if err != nil {
		w.log.WarnContext(ctx, "youtube's captions for a translation", "job_id", j.ID, "language", lang, "err", err)
		return nil, false
	}
	if !found {
		return nil, false
	}
	return aligned(segs, theirs)
}

// alignSlack is how far a cue of the site's track may start from the
// transcript's and still be the same cue.
const alignSlack = 100 // ms

// aligned returns theirs' texts when theirs has ours' cues: as many, each
// starting where ours does, none empty or out of bounds.
func aligned(ours, theirs []job.Segment) ([]string, bool) {
	if len(ours) != len(theirs) {
		return nil, false
	}
	texts := make([]string, len(ours))
	for i, o := range ours {
		t := theirs[i]
		d := o.StartMS - t.StartMS
		text := strings.TrimSpace(t.Text)
		if d < -alignSlack || d > alignSlack || text == "" || utf8.RuneCountInString(text) > 4*MaxCueChars {
			return nil, false
		}
		texts[i] = text
	}
	return texts, true
}

// SourceHash identifies a transcript's text for the translation cache: its
// language and its cues' texts, in order.
func SourceHash(t job.Transcript) string {
	h := sha256.New()
	h.Write([]byte(t.Language))
	for _, s := range t.Segments {
		h.Write([]byte{0})
		h.Write([]byte(s.Text))
	}
	return hex.EncodeToString(h.Sum(nil))
}
