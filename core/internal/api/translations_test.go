package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/core/internal/translate"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// libreTranslate is a stand-in of LibreTranslate's documented API
// (POST /translate, q an array) that upper-cases what it gets.
func libreTranslate(t *testing.T, texts *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Q      []string `json:"q"`
			Target string   `json:"target"`
			Format string   `json:"format"`
		}
		if r.URL.Path != "/translate" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Format != "text" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		texts.Add(int64(len(req.Q)))
		out := make([]string, len(req.Q))
		for i, q := range req.Q {
			out[i] = req.Target + ": " + strings.ToUpper(q)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"translatedText": out})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newTranslationWorker(t *testing.T, a *testAPI, url, owner string) *translate.Worker {
	t.Helper()
	tr, err := translate.New(translate.Config{Kind: "libretranslate", URL: url})
	require.NoError(t, err)
	return translate.NewWorker(slog.New(slog.DiscardHandler), translate.WorkerConfig{Owner: owner, Lease: time.Minute, Poll: 50 * time.Millisecond}, a.store, tr, nil)
}

// finished makes a succeeded job of user's with cues cues, two of them
// halves of one sentence.
func finished(t *testing.T, s *store.Store, user string, cues int) job.Job {
	t.Helper()
	ctx := context.Background()
	j, err := s.CreateJob(ctx, store.NewJob{UserID: user, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	c, ok, err := s.ClaimQueued(ctx, "core-1", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, j.ID, c.ID)
	segs := []job.Segment{{Seq: 0, StartMS: 0, EndMS: 1500, Text: "The quick brown fox"}, {Seq: 1, StartMS: 1500, EndMS: 3000, Text: "jumps over the dog."}}
	for i := 2; i < cues; i++ {
		segs = append(segs, job.Segment{Seq: i, StartMS: int64(i) * 1500, EndMS: int64(i+1) * 1500, Text: "Hello again."})
	}
	require.NoError(t, s.CompleteFromCaptions(ctx, c.ID, c.Epoch, store.Media{Duration: time.Minute}, "en", job.FromCaptions, segs))
	return c
}

var srtTiming = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}$`)

func TestTranslationsRunThroughCoreOnBothDatabasesAndSurviveARestart(t *testing.T) {
	for _, d := range storetest.Drivers {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			db := d.Open(t)
			_, err := migrations.Migrate(context.Background(), db)
			require.NoError(t, err)
			blobs, err := blob.OpenDir(filepath.Join(t.TempDir(), "blobs"), "")
			require.NoError(t, err)
			var sent atomic.Int64
			url := libreTranslate(t, &sent)
			// The first core takes the request and dies before translating.
			var first *translate.Worker
			a := serveTestAPIWith(t, db, blobs, nil, func(d *Deps) {
				tr, err := translate.New(translate.Config{Kind: "libretranslate", URL: url})
				require.NoError(t, err)
				first = translate.NewWorker(slog.New(slog.DiscardHandler), translate.WorkerConfig{Owner: "core-1"}, d.Store, tr, nil)
				d.Translations = first
			})
			ctx := context.Background()
			j := finished(t, a.store, a.user.ID, 40)

			resp, err := a.jobs.CreateTranslation(ctx, connect.NewRequest(&ytcaptionv1.CreateTranslationRequest{JobId: j.ID, Language: "de"}))
			require.NoError(t, err)
			require.True(t, resp.Msg.GetCreated())
			require.Equal(t, "queued", resp.Msg.GetTranslation().GetState())
			require.Positive(t, resp.Msg.GetTranslation().GetCharacters())
			_, err = a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: j.ID, Language: "de"}))
			require.Equal(t, errcode.TranslationNotReady, detailOf(t, err))
			require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err))

			// Core restarts: a new worker on the same database picks it up.
			w := newTranslationWorker(t, a, url, "core-2")
			wctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); w.Run(wctx) }()
			t.Cleanup(func() { stop(); <-done })
			deadline := time.Now().Add(30 * time.Second)
			for {
				l, err := a.jobs.ListTranslations(ctx, connect.NewRequest(&ytcaptionv1.ListTranslationsRequest{JobId: j.ID}))
				require.NoError(t, err)
				require.Len(t, l.Msg.GetTranslations(), 1)
				if st := l.Msg.GetTranslations()[0].GetState(); st == "succeeded" {
					require.Equal(t, "libretranslate", l.Msg.GetTranslations()[0].GetTranslator())
					break
				}
				require.True(t, time.Now().Before(deadline), "the translation never finished")
				time.Sleep(20 * time.Millisecond)
			}

			orig, err := a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: j.ID}))
			require.NoError(t, err)
			de, err := a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: j.ID, Language: "de"}))
			require.NoError(t, err)
			require.Equal(t, srtTiming.FindAllString(string(orig.Msg.GetContent()), -1), srtTiming.FindAllString(string(de.Msg.GetContent()), -1),
				"the same cues at the same times")
			require.Contains(t, string(de.Msg.GetContent()), "de: THE QUICK")
			require.Contains(t, string(de.Msg.GetContent()), "JUMPS OVER THE DOG.", "the sentence over two cues, translated whole and shared out")
			vtt, err := a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: j.ID, Language: "de", Format: ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT}))
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(string(vtt.Msg.GetContent()), "WEBVTT"))

			again, err := a.jobs.CreateTranslation(ctx, connect.NewRequest(&ytcaptionv1.CreateTranslationRequest{JobId: j.ID, Language: "de"}))
			require.NoError(t, err)
			require.False(t, again.Msg.GetCreated(), "asked twice, translated once")
			require.Equal(t, "succeeded", again.Msg.GetTranslation().GetState())

			// The same transcript in another job: a cache hit, nothing sent.
			before := sent.Load()
			j2 := finished(t, a.store, a.user.ID, 40)
			_, err = a.jobs.CreateTranslation(ctx, connect.NewRequest(&ytcaptionv1.CreateTranslationRequest{JobId: j2.ID, Language: "de"}))
			require.NoError(t, err)
			for {
				l, err := a.jobs.ListTranslations(ctx, connect.NewRequest(&ytcaptionv1.ListTranslationsRequest{JobId: j2.ID}))
				require.NoError(t, err)
				if tr := l.Msg.GetTranslations()[0]; tr.GetState() == "succeeded" {
					require.True(t, tr.GetCached())
					break
				}
				require.True(t, time.Now().Before(deadline), "the cached translation never finished")
				time.Sleep(20 * time.Millisecond)
			}
			require.Equal(t, before, sent.Load(), "a cache hit sends nothing")
			acct, err := a.jobs.GetAccount(ctx, connect.NewRequest(&ytcaptionv1.GetAccountRequest{}))
			require.NoError(t, err)
			require.Equal(t, resp.Msg.GetTranslation().GetCharacters(), acct.Msg.GetQuota().GetUsedTranslationChars(), "charged once")
		})
	}
}

func TestCreateTranslationRefusals(t *testing.T) {
	t.Parallel()
	var sent atomic.Int64
	url := libreTranslate(t, &sent)
	a := newTestAPIWith(t, nil, func(d *Deps) {
		tr, err := translate.New(translate.Config{Kind: "libretranslate", URL: url})
		require.NoError(t, err)
		d.Translations = translate.NewWorker(slog.New(slog.DiscardHandler), translate.WorkerConfig{Owner: "core-1"}, d.Store, tr, nil)
	})
	ctx := context.Background()
	j := finished(t, a.store, a.user.ID, 3)
	bob, err := a.store.EnsureUser(ctx, "bob", store.RoleUser)
	require.NoError(t, err)
	create := func(c interface {
		CreateTranslation(context.Context, *connect.Request[ytcaptionv1.CreateTranslationRequest]) (*connect.Response[ytcaptionv1.CreateTranslationResponse], error)
	}, id, lang string) error {
		_, err := c.CreateTranslation(ctx, connect.NewRequest(&ytcaptionv1.CreateTranslationRequest{JobId: id, Language: lang}))
		return err
	}
	for _, lang := range []string{"", "deutsch", "../../etc/passwd", "de/x", "DE", "de\n", strings.Repeat("d", 5000), "de-" + strings.Repeat("x", 9), "a" + strings.Repeat("ü", 30)} {
		err := create(a.jobs, j.ID, lang)
		require.Equal(t, errcode.InvalidArgument, detailOf(t, err), "%q", lang)
		require.Less(t, len(err.Error()), 300, "the refusal quotes a bounded part of what was sent")
		require.True(t, utf8.ValidString(err.Error()))
	}
	require.Equal(t, errcode.InvalidArgument, detailOf(t, create(a.jobs, j.ID, "en")), "the transcript's own language")
	require.Equal(t, errcode.NotFound, detailOf(t, create(a.jobsFor(bob.ID), j.ID, "de")), "another user's job")
	_, err = a.jobsFor(bob.ID).GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: j.ID, Language: "de"}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	_, err = a.jobsFor(bob.ID).ListTranslations(ctx, connect.NewRequest(&ytcaptionv1.ListTranslationsRequest{JobId: j.ID}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	require.Equal(t, errcode.NotFound, detailOf(t, create(a.jobs, "00000000-0000-0000-0000-000000000000", "de")))
	_, err = a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: j.ID, Language: "fr"}))
	require.Equal(t, errcode.NotFound, detailOf(t, err), "never asked for")

	// The quota: refused up front, with the numbers.
	require.NoError(t, a.store.SetPlan(ctx, store.Plan{Name: "tiny", MonthlyTranslationChars: 10}))
	require.NoError(t, a.store.AssignPlan(ctx, "alice", "tiny"))
	err = create(a.jobs, j.ID, "de")
	require.Equal(t, errcode.QuotaExceeded, detailOf(t, err))
	require.Contains(t, err.Error(), "10 translation characters")
	_, err = a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://127.0.0.1/a.ogg", TranslateTo: []string{"de"}}))
	require.NoError(t, err, "the month is not used up: a job's translation of unknown size is accepted")
	require.Zero(t, sent.Load(), "nothing was sent to the translator")

	// translate_to at creation.
	for _, langs := range [][]string{{"de", "fr", "es", "it", "nl", "pl"}, {"de", "de"}, {"de", "../x"}} {
		_, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://127.0.0.1/a.ogg", TranslateTo: langs}))
		require.Equal(t, errcode.InvalidArgument, detailOf(t, err), "%q", langs)
	}
	require.NoError(t, a.store.AssignPlan(ctx, "alice", store.DefaultPlan))
	created, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://127.0.0.1/b.ogg", TranslateTo: []string{"de", "fr"}}))
	require.NoError(t, err)
	l, err := a.jobs.ListTranslations(ctx, connect.NewRequest(&ytcaptionv1.ListTranslationsRequest{JobId: created.Msg.GetJob().GetId()}))
	require.NoError(t, err)
	require.Len(t, l.Msg.GetTranslations(), 2)
	require.Equal(t, "queued", l.Msg.GetTranslations()[0].GetState())
}

func TestTranslationsWithoutATranslatorAreUnavailable(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j := finished(t, a.store, a.user.ID, 2)
	_, err := a.jobs.CreateTranslation(ctx, connect.NewRequest(&ytcaptionv1.CreateTranslationRequest{JobId: j.ID, Language: "de"}))
	require.Equal(t, errcode.TranslationUnavailable, detailOf(t, err))
	require.Equal(t, connect.CodeUnavailable, connect.CodeOf(err))
	_, err = a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://127.0.0.1/a.ogg", TranslateTo: []string{"de"}}))
	require.Equal(t, errcode.TranslationUnavailable, detailOf(t, err))
}

// TestThePlanTranslationQuotaThroughTheAdminAPI: an admin sets and reads a
// plan's translation characters; setting a plan again keeps what it sends.
func TestThePlanTranslationQuotaThroughTheAdminAPI(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	admin := a.rootAdmin(t)
	_, err := admin.SetPlan(ctx, connect.NewRequest(&ytcaptionv1.SetPlanRequest{Plan: &ytcaptionv1.Plan{Name: "pro", MonthlyMinutes: 600, MonthlyTranslationChars: 250000}}))
	require.NoError(t, err)
	p, err := a.store.GetPlan(ctx, "pro")
	require.NoError(t, err)
	require.Equal(t, 250000, p.MonthlyTranslationChars)
	l, err := admin.ListPlans(ctx, connect.NewRequest(&ytcaptionv1.ListPlansRequest{}))
	require.NoError(t, err)
	var got int32
	for _, p := range l.Msg.GetPlans() {
		if p.GetName() == "pro" {
			got = p.GetMonthlyTranslationChars()
		}
	}
	require.Equal(t, int32(250000), got)
	_, err = admin.SetPlan(ctx, connect.NewRequest(&ytcaptionv1.SetPlanRequest{Plan: &ytcaptionv1.Plan{Name: "pro", MonthlyTranslationChars: -1}}))
	require.Equal(t, errcode.InvalidArgument, detailOf(t, err))
}

// TestUploadJobTakesTranslateTo: a job made of an uploaded file queues its
// translations as CreateJob's does, with the same bounds.
func TestUploadJobTakesTranslateTo(t *testing.T) {
	t.Parallel()
	var sent atomic.Int64
	url := libreTranslate(t, &sent)
	a := newTestAPIWith(t, nil, func(d *Deps) {
		tr, err := translate.New(translate.Config{Kind: "libretranslate", URL: url})
		require.NoError(t, err)
		d.Translations = translate.NewWorker(slog.New(slog.DiscardHandler), translate.WorkerConfig{Owner: "core-1"}, d.Store, tr, nil)
	})
	ctx := context.Background()
	_, err := a.jobs.UploadJob(ctx, connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: []byte("RIFF"), TranslateTo: []string{"de", "../x"}}))
	require.Equal(t, errcode.InvalidArgument, detailOf(t, err))
	up, err := a.jobs.UploadJob(ctx, connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: []byte("RIFF"), TranslateTo: []string{"de"}}))
	require.NoError(t, err)
	l, err := a.jobs.ListTranslations(ctx, connect.NewRequest(&ytcaptionv1.ListTranslationsRequest{JobId: up.Msg.GetJob().GetId()}))
	require.NoError(t, err)
	require.Len(t, l.Msg.GetTranslations(), 1)
	require.Equal(t, "de", l.Msg.GetTranslations()[0].GetLanguage())

	none := newTestAPI(t, nil)
	_, err = none.jobs.UploadJob(ctx, connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: []byte("RIFF"), TranslateTo: []string{"de"}}))
	require.Equal(t, errcode.TranslationUnavailable, detailOf(t, err))
}
