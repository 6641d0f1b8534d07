package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/mediaurl"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/render"
	"github.com/ytcaption/ytcaption/core/internal/retention"
	"github.com/ytcaption/ytcaption/core/internal/settings"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/translate"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/idempotency"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

var (
	languageRE = regexp.MustCompile(`^(auto|[a-z]{2,3}(-[A-Za-z0-9]{2,8})?)$`)
	// An engine or a model is a name a gpu-node advertises, never a path.
	// Models may hold a "/" inside: OpenAI-compatible servers name them
	// "Systran/faster-whisper-large-v3".
	engineRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)
	modelRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$`)
)

// validName says whether name is "" (any) or a name re allows with no
// "..", "//" or trailing "/": nothing a file system could read as a path
// out of a models directory.
func validName(re *regexp.Regexp, name string) bool {
	return name == "" || (re.MatchString(name) && !strings.Contains(name, "..") && !strings.Contains(name, "//") && !strings.HasSuffix(name, "/"))
}

// JobService implements ytcaptionv1connect.JobServiceHandler.
type JobService struct {
	log       *slog.Logger
	store     *store.Store
	blobs     blob.Store
	bus       *dispatch.Bus
	policy    egress.Policy // for the literal hosts of submitted URLs
	settings  *settings.Source
	watchPoll time.Duration
	captions  captionLister

	translations *translate.Worker // nil: no translator is configured
	now          func() time.Time  // share links' clock
}

// recognition is what CreateJob and UploadJob ask of speech recognition.
type recognition interface {
	GetEngine() string
	GetModel() string
	GetTask() string
	GetPrompt() string
	GetSpeakers() bool
	GetMinSpeakers() int32
	GetMaxSpeakers() int32
	GetVocabulary() []string
}

// checkRecognition checks a job's recognition options — each within its
// bounds, speakers not asked of a video's captions (source), and some
// gpu-node offering what the job needs — for a job in lang.
func (s *JobService) checkRecognition(ctx context.Context, lang, source string, m recognition) error {
	err := checkOptions(lang, m.GetEngine(), m.GetModel(), m.GetTask(), m.GetPrompt())
	if err == nil {
		err = checkSpeakers(m.GetSpeakers(), m.GetMinSpeakers(), m.GetMaxSpeakers())
	}
	if err == nil && m.GetSpeakers() && source == string(job.SourceCaptions) {
		err = job.Errorf(job.CodeInvalidArgument, "speakers needs speech recognition: a video's captions have no speaker labels (use source \"auto\" or \"asr\")")
	}
	if err == nil {
		err = checkVocabulary(m.GetVocabulary())
	}
	if err == nil {
		w := want(lang, m.GetEngine(), m.GetModel(), m.GetTask(), m.GetPrompt())
		w.Speakers = m.GetSpeakers()
		err = s.checkOffered(ctx, w)
	}
	return err
}

func (s *JobService) CreateJob(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobRequest]) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	n, err := s.newJob(ctx, req.Msg)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	j, replayed, err := s.store.CreateJobOnce(ctx, n)
	resp, err := s.created(ctx, req.Msg, j, replayed, err)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// newJob checks a creation and says what it asks the store for: the first
// half of CreateJob, shared with EdgeService.CreateJobs.
func (s *JobService) newJob(ctx context.Context, m *ytcaptionv1.CreateJobRequest) (store.NewJob, error) {
	if err := s.intakeOpen(); err != nil {
		return store.NewJob{}, err
	}
	src, shown, err := s.jobSource(ctx, m)
	lang := m.GetLanguage()
	if lang == "" {
		lang = "auto"
	}
	if err == nil {
		err = s.checkRecognition(ctx, lang, m.GetSource(), m)
	}
	source, serr := job.ParseSource(m.GetSource())
	switch {
	case err != nil:
	case serr != nil:
		err = serr
	case source == job.SourceCaptions && src.Kind != job.SourceYouTube && src.Kind != job.SourceSite:
		err = job.Errorf(job.CodeInvalidArgument, "source \"captions\" needs a video on YouTube or another site: files and uploads have no captions to take")
	case m.GetWebhookUrl() != "":
		err = s.checkWebhookURL(m.GetWebhookUrl())
	}
	switch {
	case err != nil:
	case m.GetIdempotencyKey() != "" && !idempotency.ValidKey(m.GetIdempotencyKey()):
		err = job.Errorf(job.CodeInvalidArgument, "an idempotency key is 1 to %d printable ASCII characters", idempotency.MaxKeyLen)
	}
	if err == nil {
		err = s.checkTranslateTo(m.GetTranslateTo())
	}
	if err == nil {
		err = s.checkTranslationQuota(ctx, m.GetTranslateTo())
	}
	if err != nil {
		return store.NewJob{}, err
	}
	if m.GetSpeakers() {
		source = job.SourceASR // captions have no speakers: "auto" always ends in speech recognition
	}
	return store.NewJob{
		UserID: userID(ctx), URL: shown, CanonicalURL: src.URL, SourceKind: src.Kind, Source: source,
		Language: lang, Engine: m.GetEngine(), Model: m.GetModel(), Task: m.GetTask(), Prompt: m.GetPrompt(), MaxAttempts: s.settings.Get().MaxAttempts,
		Speakers: m.GetSpeakers(), MinSpeakers: int(m.GetMinSpeakers()), MaxSpeakers: int(m.GetMaxSpeakers()),
		Vocabulary: cleanVocabulary(m.GetVocabulary()), SilenceGuard: guardOn(m.SilenceGuard), RepetitionGuard: guardOn(m.RepetitionGuard),
		IdempotencyKey: m.GetIdempotencyKey(), Fingerprint: idempotency.Fingerprint(m), WebhookURL: m.GetWebhookUrl(),
		TraceParent: tracing.TraceParent(ctx),
	}, nil
}

// created is CreateJob's answer once the store has created j (or failed
// to, err): the second half of CreateJob, shared with
// EdgeService.CreateJobs. Its error is a Connect error.
func (s *JobService) created(ctx context.Context, m *ytcaptionv1.CreateJobRequest, j job.Job, replayed bool, err error) (*ytcaptionv1.CreateJobResponse, error) {
	if err == nil {
		err = s.requestTranslations(ctx, j, m.GetTranslateTo())
	}
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	if replayed {
		s.log.InfoContext(ctx, "job request replayed", "job_id", j.ID)
	} else {
		s.log.InfoContext(ctx, "job created", "job_id", j.ID, "source", string(j.SourceKind))
	}
	return &ytcaptionv1.CreateJobResponse{Job: JobToProto(j), Replayed: replayed}, nil
}

// intakeOpen refuses new jobs while an operator has paused intake (Consul
// KV ytcaption/core/intake); jobs already accepted run on.
func (s *JobService) intakeOpen() error {
	if s.settings.Get().IntakePaused {
		return &job.Error{Code: job.CodeIntakePaused, Message: "new jobs are paused for maintenance; retry later", Retryable: true}
	}
	return nil
}

// maxPromptChars bounds a prompt: engines read a few hundred tokens of it.
const maxPromptChars = 1000

// checkOptions validates the form of what every way of creating a job
// shares; checkOffered then asks whether a gpu-node can serve it.
func checkOptions(lang, engine, model, task, prompt string) error {
	switch {
	case !languageRE.MatchString(lang):
		return job.Errorf(job.CodeInvalidArgument, "language must be \"auto\" or an ISO 639-1 code such as \"en\", got %q", lang)
	case !validName(engineRE, engine):
		return job.Errorf(job.CodeInvalidArgument, "engine %q is not an engine name (letters, digits and ._:-, at most 100)", engine)
	case !validName(modelRE, model):
		return job.Errorf(job.CodeInvalidArgument, "model %q is not a model name (letters, digits and ._:-/, at most 100, no path)", model)
	case utf8.RuneCountInString(prompt) > maxPromptChars:
		return job.Errorf(job.CodeInvalidArgument, "a prompt is at most %d characters", maxPromptChars)
	case task != "" && task != engines.Transcribe && task != engines.Translate:
		return job.Errorf(job.CodeInvalidArgument, "task must be transcribe or translate, got %q", task)
	}
	return nil
}

// want is what a job asks of an engine.
func want(lang, engine, model, task, prompt string) engines.Want {
	return engines.Want{Engine: engine, Model: model, Language: lang, Task: cmp.Or(task, engines.Transcribe), Prompt: prompt != ""}
}

// MaxUploadBytes is the largest file UploadJob takes (OpenAI's limit too).
const MaxUploadBytes = 25 << 20

// UploadJob keeps the client's file in the blob store (content-addressed:
// the same file uploaded twice is stored once) and queues a job for it; the
// download stage then treats it like fetched media.
func (s *JobService) UploadJob(ctx context.Context, req *connect.Request[ytcaptionv1.UploadJobRequest]) (*connect.Response[ytcaptionv1.UploadJobResponse], error) {
	if err := s.intakeOpen(); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	m := req.Msg
	lang := m.GetLanguage()
	if lang == "" {
		lang = "auto"
	}
	var err error
	switch {
	case len(m.GetData()) == 0:
		err = job.Errorf(job.CodeInvalidArgument, "the file is empty")
	case len(m.GetData()) > MaxUploadBytes:
		err = job.Errorf(job.CodeInvalidArgument, "the file is larger than %d MiB", MaxUploadBytes>>20)
	default:
		err = s.checkRecognition(ctx, lang, "", m)
	}
	if err == nil {
		err = s.checkTranslateTo(m.GetTranslateTo())
	}
	if err == nil {
		// Before the blob is stored: a refused upload leaves nothing behind.
		err = s.store.CheckQuota(ctx, userID(ctx))
	}
	if err == nil {
		err = s.checkTranslationQuota(ctx, m.GetTranslateTo())
	}
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	sum := sha256.Sum256(m.GetData())
	key := blob.ContentKey("uploads", sum[:], "")
	if err := s.blobs.Put(ctx, key, bytes.NewReader(m.GetData()), int64(len(m.GetData())), "application/octet-stream"); err != nil {
		return nil, toConnectError(ctx, s.log, &job.Error{Code: job.CodeUnavailable, Message: "the upload could not be stored", Retryable: true, Err: err})
	}
	name := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, m.GetFilename())
	j, err := s.store.CreateJob(ctx, store.NewJob{
		UserID: userID(ctx), URL: job.UploadURL(name), CanonicalURL: key, SourceKind: job.SourceUpload, Source: job.SourceASR,
		Language: lang, Engine: m.GetEngine(), Model: m.GetModel(), Task: m.GetTask(), Prompt: m.GetPrompt(), MaxAttempts: s.settings.Get().MaxAttempts,
		Speakers: m.GetSpeakers(), MinSpeakers: int(m.GetMinSpeakers()), MaxSpeakers: int(m.GetMaxSpeakers()),
		Vocabulary: cleanVocabulary(m.GetVocabulary()), SilenceGuard: guardOn(m.SilenceGuard), RepetitionGuard: guardOn(m.RepetitionGuard),
		TraceParent: tracing.TraceParent(ctx),
	})
	if err != nil {
		// The quota was spent between the check and the creation.
		s.forgetUpload(ctx, key, m.GetData())
		return nil, toConnectError(ctx, s.log, err)
	}
	s.keepUpload(ctx, key, m.GetData())
	if err := s.requestTranslations(ctx, j, m.GetTranslateTo()); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	s.log.InfoContext(ctx, "job created", "job_id", j.ID, "source", string(job.SourceUpload), "bytes", len(m.GetData()))
	return connect.NewResponse(&ytcaptionv1.UploadJobResponse{Job: JobToProto(j)}), nil
}

// offerWindow is how long a gpu-node may stay silent before what it runs
// stops counting as on offer: a node polls every 30 s at the longest.
const offerWindow = 10 * time.Minute

// checkOffered refuses a job that no engine of the gpu-nodes seen lately
// could serve — by what the nodes advertised, since core knows no engine —
// with unsupported_option and a message naming what is on offer.
func (s *JobService) checkOffered(ctx context.Context, w engines.Want) error {
	if w.Plain() {
		return engines.Check(nil, w) // every engine serves it: no need to ask
	}
	offers, err := s.store.Offers(ctx, offerWindow)
	if err != nil {
		return err
	}
	return engines.Check(offers, w)
}

// forgetUpload deletes the blob of an upload whose job was not created,
// unless a job refers to it: uploads are content-addressed, so another job
// may hold the same file.
func (s *JobService) forgetUpload(ctx context.Context, key string, data []byte) {
	ctx = context.WithoutCancel(ctx)
	ds, err := s.store.ForgetUpload(ctx, key)
	if err == nil && len(ds) > 0 {
		// Now, unless a backup runs; then the retention sweeper does it.
		_, err = retention.DeleteBlobs(ctx, s.store, s.blobs, ds)
	}
	if err != nil {
		s.log.WarnContext(ctx, "delete a refused upload", "key", key, "err", err)
	}
	// A job of the same file created meanwhile must not lose it.
	s.keepUpload(ctx, key, data)
}

// keepUpload stores an upload again when a job refers to it but the blob
// is gone or queued for deletion: a concurrent refused upload of the same
// file may have deleted it between this job's Put and its creation. Stored
// again, it is newer than the deletion request, which then keeps it.
func (s *JobService) keepUpload(ctx context.Context, key string, data []byte) {
	referenced, pending, err := s.store.UploadState(ctx, key)
	if err != nil || !referenced {
		if err != nil {
			s.log.WarnContext(ctx, "check an upload's blob", "key", key, "err", err)
		}
		return
	}
	stored := false
	if !pending {
		if _, stored, err = s.blobs.Stored(ctx, key); err != nil {
			s.log.WarnContext(ctx, "check an upload's blob", "key", key, "err", err)
			return
		}
	}
	if stored {
		return
	}
	if err := s.blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "application/octet-stream"); err != nil {
		s.log.WarnContext(ctx, "store an upload again", "key", key, "err", err)
	}
}

// checkLiteralAddress refuses a URL whose host the fetcher and the notifier
// would refuse anyway under the one address policy (internal/egress) — a
// refused literal address in any form a dialer or resolver accepts, a zone, a
// localhost name — so the user hears it now rather than from a failed job.
// Other names are checked when they are dialled.
func (s *JobService) checkLiteralAddress(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return job.Errorf(job.CodeInvalidURL, "unparsable URL")
	}
	if err := s.policy.CheckHost(u.Hostname()); err != nil {
		return &job.Error{Code: job.CodeInvalidURL, Message: fmt.Sprintf("the address %s is not allowed", u.Hostname()), Err: err}
	}
	return nil
}

// checkWebhookURL refuses what the notifier could never deliver to: not
// http(s), no host, or a literal address it may not reach.
func (s *JobService) checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048:
		return job.Errorf(job.CodeInvalidArgument, "webhook_url must be an http or https URL of at most 2048 characters")
	case u.User != nil:
		return job.Errorf(job.CodeInvalidArgument, "webhook_url must not carry credentials: deliveries are signed instead")
	}
	if err := s.checkLiteralAddress(raw); err != nil {
		return job.Errorf(job.CodeInvalidArgument, "webhook_url: %s", err.(*job.Error).Message)
	}
	return nil
}

// GetAccount is the caller's quota and notification settings.
func (s *JobService) GetAccount(ctx context.Context, _ *connect.Request[ytcaptionv1.GetAccountRequest]) (*connect.Response[ytcaptionv1.GetAccountResponse], error) {
	a, err := s.store.GetAccount(ctx, userID(ctx))
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	u, err := s.store.GetUsage(ctx, a.ID)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	q := quotaToProto(u)
	if err := s.addTranslationQuota(ctx, q); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	return connect.NewResponse(&ytcaptionv1.GetAccountResponse{UserId: a.ID, Name: a.Name, Plan: a.Plan.Name, Quota: q,
		WebhookUrl: a.WebhookURL, WebhookSecret: a.WebhookSecret}), nil
}

func (s *JobService) GetJob(ctx context.Context, req *connect.Request[ytcaptionv1.GetJobRequest]) (*connect.Response[ytcaptionv1.GetJobResponse], error) {
	j, err := s.store.GetJob(ctx, userID(ctx), req.Msg.GetId())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	return connect.NewResponse(&ytcaptionv1.GetJobResponse{Job: JobToProto(j)}), nil
}

func (s *JobService) ListJobs(ctx context.Context, req *connect.Request[ytcaptionv1.ListJobsRequest]) (*connect.Response[ytcaptionv1.ListJobsResponse], error) {
	size := int(req.Msg.GetPageSize())
	switch {
	case size == 0:
		size = 20
	case size < 0 || size > 100:
		return nil, toConnectError(ctx, s.log, job.Errorf(job.CodeInvalidArgument, "page size must be between 1 and 100, got %d", size))
	}
	jobs, next, err := s.store.ListJobs(ctx, userID(ctx), size, req.Msg.GetPageToken())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	resp := &ytcaptionv1.ListJobsResponse{NextPageToken: next}
	for _, j := range jobs {
		resp.Jobs = append(resp.Jobs, JobToProto(j))
	}
	return connect.NewResponse(resp), nil
}

func (s *JobService) CancelJob(ctx context.Context, req *connect.Request[ytcaptionv1.CancelJobRequest]) (*connect.Response[ytcaptionv1.CancelJobResponse], error) {
	j, err := s.cancel(ctx, userID(ctx), req.Msg.GetId())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	return connect.NewResponse(&ytcaptionv1.CancelJobResponse{Job: JobToProto(j)}), nil
}

// cancel cancels a job of user's (any user's job for ""), its chunks too.
// Whoever holds them hears of it from the store's reported changes.
func (s *JobService) cancel(ctx context.Context, user, id string) (job.Job, error) {
	j, err := s.store.CancelJob(ctx, user, id)
	if err != nil {
		return j, err
	}
	if j.Chunks > 0 && j.Status == job.StatusCancelled {
		if err := s.store.CancelChunks(ctx, j.ID); err != nil {
			return j, err
		}
	}
	return j, nil
}

// DeleteJob cancels the job if it runs, deletes it with its transcript, and
// deletes its audio at once (the retention sweeper retries what fails here).
func (s *JobService) DeleteJob(ctx context.Context, req *connect.Request[ytcaptionv1.DeleteJobRequest]) (*connect.Response[ytcaptionv1.DeleteJobResponse], error) {
	if _, err := s.CancelJob(ctx, connect.NewRequest(&ytcaptionv1.CancelJobRequest{Id: req.Msg.GetId()})); err != nil {
		return nil, err
	}
	queued, err := s.store.PurgeJob(ctx, userID(ctx), req.Msg.GetId())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	if _, err := retention.DeleteBlobs(ctx, s.store, s.blobs, queued); err != nil {
		s.log.WarnContext(ctx, "delete a purged job's blobs", "job_id", req.Msg.GetId(), "err", err)
	}
	s.log.InfoContext(ctx, "job purged", "job_id", req.Msg.GetId())
	return connect.NewResponse(&ytcaptionv1.DeleteJobResponse{}), nil
}

var formats = map[ytcaptionv1.TranscriptFormat]render.Format{
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_UNSPECIFIED: render.SRT,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_SRT:         render.SRT,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT:         render.VTT,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TXT:         render.TXT,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_JSON:        render.JSON,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TSV:         render.TSV,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_ASS:         render.ASS,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TTML:        render.TTML,
	ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_SBV:         render.SBV,
}

func (s *JobService) GetTranscript(ctx context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (*connect.Response[ytcaptionv1.GetTranscriptResponse], error) {
	f, ok := formats[req.Msg.GetFormat()]
	if !ok {
		return nil, toConnectError(ctx, s.log, job.Errorf(job.CodeInvalidArgument, "unknown transcript format %v", req.Msg.GetFormat()))
	}
	opts := render.Options{MaxLineChars: int(req.Msg.GetMaxLineChars()), MaxLines: int(req.Msg.GetMaxLines()), Karaoke: req.Msg.GetKaraoke()}
	if err := opts.ValidateFor(f); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	rev := req.Msg.Revision // nil: the latest
	lang := req.Msg.GetLanguage()
	if lang != "" {
		// A translation is of the machine's cues, one text each.
		if rev != nil && *rev != 0 {
			return nil, toConnectError(ctx, s.log, job.Errorf(job.CodeInvalidArgument, "a translation is of revision 0, the machine's transcript; leave revision out or make it 0"))
		}
		rev = new(int32)
	}
	t, err := s.transcript(ctx, req.Msg.GetId(), rev)
	if lang != "" && err == nil {
		t, err = s.translated(ctx, t, lang)
	}
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	body, err := render.Render(f, t, opts)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	return connect.NewResponse(&ytcaptionv1.GetTranscriptResponse{ContentType: f.ContentType(), Content: body}), nil
}

// transcript loads a finished job's segments, of revision rev (nil: the
// latest; 0: the machine's). A cancelled job serves what was transcribed
// before the cancel.
func (s *JobService) transcript(ctx context.Context, id string, rev *int32) (job.Transcript, error) {
	j, err := s.store.GetJob(ctx, userID(ctx), id)
	if err != nil {
		return job.Transcript{}, err
	}
	if j.Status != job.StatusSucceeded && j.Status != job.StatusCancelled {
		return job.Transcript{}, job.Errorf(job.CodeNotReady, "job %s is %s; its transcript is available once it has succeeded", j.ID, j.Status)
	}
	if j.TranscriptExpired {
		return job.Transcript{}, job.Errorf(job.CodeExpired, "job %s's transcript was deleted when its retention period ended", j.ID)
	}
	n := j.Revision
	if rev != nil {
		if *rev < 0 || int(*rev) > j.Revision {
			return job.Transcript{}, job.Errorf(errcode.RevisionNotFound, "job %s has no revision %d; its latest is %d", j.ID, *rev, j.Revision)
		}
		n = int(*rev)
	}
	segs, err := s.store.RevisionSegments(ctx, j, n)
	if err != nil {
		return job.Transcript{}, err
	}
	lang := j.DetectedLanguage
	if lang == "" {
		lang = j.Language
	}
	t := job.Transcript{JobID: j.ID, Language: lang, Engine: j.Engine, Model: j.Model, Duration: j.MediaDuration, Revision: n, Segments: segs,
		SpeakerNames: j.SpeakerNames}
	if j.TranscribedFrom == job.FromSpeech && (j.Guards.Silence || j.Guards.Repetition) {
		g := j.Guards
		t.Guards = &g
	}
	return t, nil
}

// WatchJob sends the job, and its segments after the cursor, whenever it
// changes: the bus wakes it on a change committed by any replica (NOTIFY on
// PostgreSQL, in process on SQLite), and a read every watchPoll covers a
// lost wake-up. A new epoch (another attempt) restarts the segments.
func (s *JobService) WatchJob(ctx context.Context, req *connect.Request[ytcaptionv1.WatchJobRequest], stream *connect.ServerStream[ytcaptionv1.WatchJobResponse]) error {
	var (
		last    *ytcaptionv1.Job
		epoch   int64 = -1
		lastSeq       = -1
	)
	if after := req.Msg.GetAfter(); after != "" {
		e, q, ok := parseCursor(after)
		if !ok {
			return toConnectError(ctx, s.log, job.Errorf(job.CodeInvalidArgument, "after: %q is not a cursor from this stream", after))
		}
		epoch, lastSeq = e, q
	}
	id := req.Msg.GetId()
	tick := time.NewTicker(s.watchPoll) // the fallback when a wake-up is lost
	defer tick.Stop()
	for {
		// Take the wake-up before reading, so a change in between still wakes us.
		changed, release := s.bus.Changed.Wait(id)
		j, err := s.store.GetJob(ctx, userID(ctx), id)
		if err != nil {
			release()
			return toConnectError(ctx, s.log, err)
		}
		if j.Epoch != epoch {
			epoch, lastSeq = j.Epoch, -1 // a new attempt transcribes from the start
		}
		segs, err := s.store.Segments(ctx, j.ID, j.Epoch, lastSeq)
		if err != nil {
			release()
			return toConnectError(ctx, s.log, err)
		}
		p := JobToProto(j)
		if len(segs) > 0 || last == nil || !sameJob(last, p) {
			msg := &ytcaptionv1.WatchJobResponse{Job: p}
			for _, sg := range segs {
				msg.Segments = append(msg.Segments, segmentToProto(sg))
				lastSeq = sg.Seq
			}
			msg.Cursor = fmt.Sprintf("%d:%d", epoch, lastSeq)
			if err := stream.Send(msg); err != nil {
				release()
				return err
			}
			last = p
		}
		if j.Status.Terminal() {
			release()
			return nil
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-tick.C:
		}
		release()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// parseCursor reads "<epoch>:<seq>".
func parseCursor(c string) (epoch int64, seq int, ok bool) {
	e, q, found := strings.Cut(c, ":")
	ep, err1 := strconv.ParseInt(e, 10, 64)
	sq, err2 := strconv.Atoi(q)
	if !found || err1 != nil || err2 != nil || ep < 0 || sq < -1 {
		return 0, 0, false
	}
	return ep, sq, true
}

func sameJob(a, b *ytcaptionv1.Job) bool {
	return a.GetStatus() == b.GetStatus() && a.GetProgress() == b.GetProgress() && a.GetAttempt() == b.GetAttempt()
}

// Bounds of ListCaptions: each runs yt-dlp, which asks the site, for
// seconds — a few at once per replica, and none longer than listTimeout.
const (
	maxListings = 8
	listTimeout = 90 * time.Second
)

// captionLister runs ListCaptions' yt-dlp.
type captionLister struct {
	ytdlp   *ytdlp.Downloader
	routes  *outbound.Pool // nil: yt-dlp's own route
	youtube *breaker.Breaker
	workDir string
	running chan struct{} // a place per listing running
}

// ListCaptions lists the caption tracks a video has, asking the site with
// yt-dlp and downloading nothing else. The URL is validated as CreateJob's
// is; yt-dlp's failures are the download's typed errors. A direct file (or a
// page no extractor takes) has no tracks: an empty list, not an error.
func (s *JobService) ListCaptions(ctx context.Context, req *connect.Request[ytcaptionv1.ListCaptionsRequest]) (*connect.Response[ytcaptionv1.ListCaptionsResponse], error) {
	src, err := mediaurl.Parse(req.Msg.GetUrl())
	if err == nil {
		err = s.checkLiteralAddress(src.URL)
	}
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	l, err := s.captions.list(ctx, src)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	return connect.NewResponse(listingToProto(src.URL, l)), nil
}

func (c captionLister) list(ctx context.Context, src mediaurl.Source) (ytdlp.Listing, error) {
	if src.Kind == job.SourceUpload {
		return ytdlp.Listing{}, nil
	}
	if c.ytdlp == nil {
		return ytdlp.Listing{}, &job.Error{Code: job.CodeUnavailable, Message: "listing captions is not enabled on this server"}
	}
	select {
	case c.running <- struct{}{}:
		defer func() { <-c.running }()
	default:
		return ytdlp.Listing{}, &job.Error{Code: job.CodeUnavailable, Message: "too many caption listings are running; retry in a few seconds", Retryable: true}
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	dir, err := os.MkdirTemp(c.workDir, "ytcaption-list-")
	if err != nil {
		return ytdlp.Listing{}, fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var l ytdlp.Listing
	list := func(d *ytdlp.Downloader, dir string) error {
		run := func() (err error) {
			l, err = d.ListCaptions(ctx, dir, src.URL)
			return err
		}
		if src.Kind == job.SourceYouTube && c.youtube != nil {
			return c.youtube.Do(run)
		}
		return run()
	}
	if c.routes == nil {
		err = list(c.ytdlp, dir)
	} else {
		// The download stage's proxies and cookie files, in turn: a listing
		// is refused as a download is.
		err = c.routes.Do(ctx, dir, func(proxy, cookies, dir string) error {
			return list(c.ytdlp.Via(ytdlp.Route{Proxy: proxy, CookiesFile: cookies}), dir)
		})
	}
	switch {
	case errors.Is(err, breaker.ErrOpen), errors.Is(err, outbound.ErrAllResting):
		return l, &job.Error{Code: job.CodeUnavailable, Message: "YouTube is refusing this server; retry later", Retryable: true, Err: err}
	case src.Kind == job.SourceHTTP && job.CodeOf(err) == job.CodeInvalidURL:
		// No extractor takes it: a media file, which has no caption tracks.
		return ytdlp.Listing{}, nil
	}
	return l, err
}
