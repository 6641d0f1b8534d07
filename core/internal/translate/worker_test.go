package translate_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/core/internal/translate"
)

// libreStandIn is a LibreTranslate stand-in counting the texts it gets.
func libreStandIn(t *testing.T, texts *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Q      []string `json:"q"`
			Target string   `json:"target"`
		}
		if r.URL.Path != "/translate" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		texts.Add(int64(len(req.Q)))
		out := make([]string, len(req.Q))
		for i, q := range req.Q {
			out[i] = fake(req.Target, q)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"translatedText": out})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// finishedJob makes a job of u's that succeeded with n segments.
func finishedJob(t *testing.T, s *store.Store, u store.User, url string, n int) job.Job {
	t.Helper()
	ctx := context.Background()
	j, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: url, CanonicalURL: url, SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	c, ok, err := s.ClaimQueued(ctx, "core-1", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, j.ID, c.ID)
	src := longTranscript(n)
	require.NoError(t, s.CompleteFromCaptions(ctx, c.ID, c.Epoch, store.Media{Duration: time.Hour}, "en", job.FromCaptions, src.Segments))
	return c
}

func newWorker(t *testing.T, s *store.Store, url, owner string) *translate.Worker {
	t.Helper()
	tr, err := translate.New(translate.Config{Kind: "libretranslate", URL: url})
	require.NoError(t, err)
	return translate.NewWorker(slog.New(slog.DiscardHandler), translate.WorkerConfig{Owner: owner, Lease: time.Minute}, s, tr, nil)
}

func TestWorkerTranslatesAQueuedTranslationAfterARestartAndCachesIt(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		s, u := env.Store, env.User
		ctx := context.Background()
		var sent atomic.Int64
		url := libreStandIn(t, &sent)

		j := finishedJob(t, s, u, "http://example.com/a.ogg", 300)
		_, _, err := s.RequestTranslation(ctx, u.ID, j.ID, "de", translate.Chars(longTranscript(300)))
		require.NoError(t, err)
		// A core claimed it and died: its lease ran out (a lease of 0).
		_, ok, err := s.ClaimTranslation(ctx, "dead-core", 0)
		require.NoError(t, err)
		require.True(t, ok)

		// Another core, started afresh on the same database, picks it up.
		did, err := newWorker(t, s, url, "core-2").RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, did)
		tr, texts, err := s.GetTranslation(ctx, u.ID, j.ID, "de")
		require.NoError(t, err)
		require.Equal(t, store.TranslationSucceeded, tr.State, tr.ErrorMessage)
		require.Equal(t, 2, tr.Attempt)
		require.False(t, tr.Cached)
		require.Len(t, texts, 300)
		require.Equal(t, fake("de", "Cue number 2 stands alone."), texts[2])
		first := sent.Load()
		require.Positive(t, first)

		// The same transcript, another job: the second request is a cache hit.
		j2 := finishedJob(t, s, u, "http://example.com/b.ogg", 300)
		_, _, err = s.RequestTranslation(ctx, u.ID, j2.ID, "de", translate.Chars(longTranscript(300)))
		require.NoError(t, err)
		did, err = newWorker(t, s, url, "core-3").RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, did)
		tr2, texts2, err := s.GetTranslation(ctx, u.ID, j2.ID, "de")
		require.NoError(t, err)
		require.Equal(t, store.TranslationSucceeded, tr2.State)
		require.True(t, tr2.Cached)
		require.Equal(t, texts, texts2)
		require.Equal(t, first, sent.Load(), "nothing was sent to the translator")
		use, err := s.GetTranslationUsage(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, translate.Chars(longTranscript(300)), use.Used, "the cache hit is free")

		did, err = newWorker(t, s, url, "core-3").RunOnce(ctx)
		require.NoError(t, err)
		require.False(t, did, "nothing left")
	})
}

func TestWorkerRefusesATranslationPastTheQuotaAndFailsOnesWithoutTranscript(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		s, u := env.Store, env.User
		ctx := context.Background()
		var sent atomic.Int64
		url := libreStandIn(t, &sent)
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "small", MonthlyTranslationChars: 100}))
		require.NoError(t, s.AssignPlan(ctx, u.Name, "small"))

		// Asked for at creation, before the transcript's size was known.
		running, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP})
		require.NoError(t, err)
		_, _, err = s.RequestTranslation(ctx, u.ID, running.ID, "de", 0)
		require.NoError(t, err)
		c, ok, err := s.ClaimQueued(ctx, "core-1", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.CompleteFromCaptions(ctx, c.ID, c.Epoch, store.Media{}, "en", job.FromCaptions, longTranscript(50).Segments))

		w := newWorker(t, s, url, "core-1")
		did, err := w.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, did)
		tr, _, err := s.GetTranslation(ctx, u.ID, running.ID, "de")
		require.NoError(t, err)
		require.Equal(t, store.TranslationFailed, tr.State)
		require.Equal(t, job.CodeQuotaExceeded, tr.ErrorCode)
		require.Contains(t, tr.ErrorMessage, "100 translation characters")
		require.Zero(t, sent.Load(), "refused before anything was sent")

		failed, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "http://example.com/c.ogg", CanonicalURL: "http://example.com/c.ogg", SourceKind: job.SourceHTTP})
		require.NoError(t, err)
		_, _, err = s.RequestTranslation(ctx, u.ID, failed.ID, "fr", 0)
		require.NoError(t, err)
		_, err = s.CancelJob(ctx, u.ID, failed.ID)
		require.NoError(t, err)
		did, err = w.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, did)
		tr, _, err = s.GetTranslation(ctx, u.ID, failed.ID, "fr")
		require.NoError(t, err)
		require.Equal(t, store.TranslationFailed, tr.State)
		require.Equal(t, "translation_failed", tr.ErrorCode, "a job cancelled before any transcript has none to translate")
	})
}

// TestWorkerTakesYouTubesOwnTranslationWhenItHasTheTranscriptsCues: a
// transcript that is a YouTube video's captions is translated by YouTube
// itself when its track in the language has the same cues — free, nothing
// sent to the translator; a track with other cues, or a video that is not
// the transcript's source, goes to the translator.
func TestWorkerTakesYouTubesOwnTranslationWhenItHasTheTranscriptsCues(t *testing.T) {
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		env := open(t)
		s, u := env.Store, env.User
		ctx := context.Background()
		var sent atomic.Int64
		url := libreStandIn(t, &sent)
		ours := longTranscript(20).Segments
		var asked []string
		site := func(_ context.Context, url, lang string) ([]job.Segment, bool, error) {
			asked = append(asked, url+" "+lang)
			if lang == "nl" {
				return nil, false, nil // no Dutch track
			}
			theirs := make([]job.Segment, len(ours))
			for i, sg := range ours {
				theirs[i] = job.Segment{StartMS: sg.StartMS + 40, EndMS: sg.EndMS, Text: "(" + lang + ") " + sg.Text}
			}
			if lang == "es" {
				theirs = theirs[1:] // other cues
			}
			return theirs, true, nil
		}
		tr, err := translate.New(translate.Config{Kind: "libretranslate", URL: url})
		require.NoError(t, err)
		w := translate.NewWorker(slog.New(slog.DiscardHandler), translate.WorkerConfig{Owner: "core-1", Lease: time.Minute, SiteCaptions: site}, s, tr, nil)

		video := "https://www.youtube.com/watch?v=CaptionsMan"
		j, err := s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: video, CanonicalURL: video, SourceKind: job.SourceYouTube})
		require.NoError(t, err)
		c, ok, err := s.ClaimQueued(ctx, "core-1", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.CompleteFromCaptions(ctx, c.ID, c.Epoch, store.Media{}, "en", job.FromAutomaticCaptions, ours))
		for _, lang := range []string{"de", "es", "nl"} {
			_, _, err := s.RequestTranslation(ctx, u.ID, j.ID, lang, translate.Chars(longTranscript(20)))
			require.NoError(t, err)
			did, err := w.RunOnce(ctx)
			require.NoError(t, err)
			require.True(t, did)
		}
		de, texts, err := s.GetTranslation(ctx, u.ID, j.ID, "de")
		require.NoError(t, err)
		require.Equal(t, store.TranslationSucceeded, de.State)
		require.Equal(t, translate.YouTube, de.Translator)
		require.Equal(t, "(de) "+ours[3].Text, texts[3])
		use, err := s.GetTranslationUsage(ctx, u.ID)
		require.NoError(t, err)
		for _, lang := range []string{"es", "nl"} {
			got, texts, err := s.GetTranslation(ctx, u.ID, j.ID, lang)
			require.NoError(t, err)
			require.Equal(t, "libretranslate", got.Translator, lang)
			require.Len(t, texts, len(ours))
		}
		require.Equal(t, 2*translate.Chars(longTranscript(20)), use.Used, "YouTube's translation is free")
		require.Equal(t, []string{video + " de", video + " es", video + " nl"}, asked)

		// A file's transcript is not YouTube's to translate.
		other := finishedJob(t, s, u, "http://example.com/x.ogg", 20)
		_, _, err = s.RequestTranslation(ctx, u.ID, other.ID, "it", 0)
		require.NoError(t, err)
		did, err := w.RunOnce(ctx)
		require.NoError(t, err)
		require.True(t, did)
		require.Len(t, asked, 3, "YouTube was not asked")
	})
}
