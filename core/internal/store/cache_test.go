package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// cacheRun drives jobs through the download stage's cache lookup.
type cacheRun struct {
	t *testing.T
	s *store.Store
}

// claim creates n and claims it for download.
func (r cacheRun) claim(n store.NewJob) job.Job {
	r.t.Helper()
	ctx := context.Background()
	j, err := r.s.CreateJob(ctx, n)
	require.NoError(r.t, err)
	c, ok, err := r.s.ClaimQueued(ctx, "core-1", lease)
	require.NoError(r.t, err)
	require.True(r.t, ok)
	require.Equal(r.t, j.ID, c.ID)
	return c
}

// lookup creates n and asks the cache; a miss is put aside (released for an
// hour) so later claims take later jobs.
func (r cacheRun) lookup(n store.NewJob) (job.Job, bool) {
	r.t.Helper()
	ctx := context.Background()
	c := r.claim(n)
	hit, err := r.s.CompleteFromCache(ctx, c.ID, c.Epoch)
	require.NoError(r.t, err)
	if !hit {
		_, err = r.s.Release(ctx, c.ID, c.Epoch, time.Hour)
		require.NoError(r.t, err)
	}
	got, err := r.s.GetJob(ctx, "", c.ID)
	require.NoError(r.t, err)
	return got, hit
}

// transcribe takes n through download and transcription: a donor. text is
// its one segment.
func (r cacheRun) transcribe(n store.NewJob, title, text string) job.Job {
	r.t.Helper()
	ctx := context.Background()
	c := r.claim(n)
	require.NoError(r.t, r.s.MarkReady(ctx, c.ID, c.Epoch, store.Media{Title: title, Uploader: "uploader of " + title, Duration: time.Second, AudioKey: "audio/" + c.ID + ".wav"}))
	t, ok, err := r.s.ClaimReady(ctx, "node-1", whispercpp, lease, 0)
	require.NoError(r.t, err)
	require.True(r.t, ok)
	require.Equal(r.t, c.ID, t.ID)
	_, err = r.s.PutSegments(ctx, t.ID, t.Epoch, []job.Segment{{Seq: 0, StartMS: 0, EndMS: 900, Text: text}}, 1)
	require.NoError(r.t, err)
	done, err := r.s.Complete(ctx, t.ID, t.Epoch, "en", 1)
	require.NoError(r.t, err)
	require.True(r.t, done)
	return t
}

func (r cacheRun) text(j job.Job) string {
	r.t.Helper()
	segs, err := r.s.Segments(context.Background(), j.ID, j.Epoch, -1)
	require.NoError(r.t, err)
	require.Len(r.t, segs, 1)
	return segs[0].Text
}

// TestTranscriptCacheKeysOnTaskAndPrompt: a translation or a prompted job
// never takes a plain transcript from the cache, nor the other way round;
// the same task and prompt do.
func TestTranscriptCacheKeysOnTaskAndPrompt(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		r := cacheRun{t: t, s: s}
		media := func(task, prompt string) store.NewJob {
			return store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP,
				Language: "de", Engine: "whispercpp", Task: task, Prompt: prompt}
		}

		r.transcribe(media("", ""), "a", "guten Tag")
		for _, n := range []store.NewJob{media("translate", ""), media("", "Dashwood"), media("translate", "Dashwood")} {
			_, hit := r.lookup(n)
			require.False(t, hit, "task %q, prompt %q is other work than a plain transcript", n.Task, n.Prompt)
		}

		r.transcribe(media("translate", ""), "a", "good day")
		r.transcribe(media("", "Dashwood"), "a", "guten Tag, Dashwood")
		got, hit := r.lookup(media("transcribe", ""))
		require.True(t, hit)
		require.Equal(t, "guten Tag", r.text(got), "a plain transcript, not the translation or the prompted one")
		got, hit = r.lookup(media("translate", ""))
		require.True(t, hit)
		require.Equal(t, "good day", r.text(got))
		got, hit = r.lookup(media("", "Dashwood"))
		require.True(t, hit)
		require.Equal(t, "guten Tag, Dashwood", r.text(got))
		_, hit = r.lookup(media("", "Marianne"))
		require.False(t, hit, "another prompt")
	})
}

// TestReusedJobNamesNoOtherUsersJobOrFile: bob's upload of the same file
// alice uploaded reuses her transcript (the hit still counts) but shows
// neither her job's id nor her file's name; alice's own reuse names her job.
func TestReusedJobNamesNoOtherUsersJobOrFile(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, alice := newStore(t)
		r := cacheRun{t: t, s: s}
		ctx := context.Background()
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		const key = "uploads/ab/abcdef"
		upload := func(u store.User, name string) store.NewJob {
			return store.NewJob{UserID: u.ID, URL: "upload:" + name, CanonicalURL: key, SourceKind: job.SourceUpload, Source: job.SourceASR}
		}

		donor := r.transcribe(upload(alice, "acquisition-plans.wav"), "acquisition-plans.wav", "we buy them on friday")

		got, hit := r.lookup(upload(bob, "bob.wav"))
		require.True(t, hit, "the same file and options: the transcript is reused")
		require.Equal(t, bob.ID, got.UserID)
		require.Empty(t, got.ReusedFrom, "no other user's job id")
		require.Equal(t, "bob.wav", got.MediaTitle, "bob's own file name")
		require.Empty(t, got.MediaUploader)
		require.NotContains(t, got.MediaTitle+got.MediaUploader+got.URL, "acquisition-plans")
		require.Equal(t, "we buy them on friday", r.text(got))

		mine, hit := r.lookup(upload(alice, "again.wav"))
		require.True(t, hit)
		require.Equal(t, donor.ID, mine.ReusedFrom, "alice's own job may be named")
		require.Equal(t, "again.wav", mine.MediaTitle)

		// A URL's title is the media's, the same for everybody.
		web := func(u store.User) store.NewJob {
			return store.NewJob{UserID: u.ID, URL: "http://example.com/talk.ogg", CanonicalURL: "http://example.com/talk.ogg", SourceKind: job.SourceHTTP}
		}
		webDonor := r.transcribe(web(alice), "A Talk", "hello")
		got, hit = r.lookup(web(bob))
		require.True(t, hit)
		require.Empty(t, got.ReusedFrom)
		require.Equal(t, "A Talk", got.MediaTitle)
		got, hit = r.lookup(web(alice))
		require.True(t, hit)
		require.Equal(t, webDonor.ID, got.ReusedFrom)
	})
}

// TestForgetUploadKeepsFilesAJobHas: a refused upload's blob is queued for
// deletion only when no job holds the same file.
func TestForgetUploadKeepsFilesAJobHas(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		ds, err := s.ForgetUpload(ctx, "uploads/00/nobody")
		require.NoError(t, err)
		require.Len(t, ds, 1)
		require.Equal(t, "uploads/00/nobody", ds[0].Key)
		ref, pending, err := s.UploadState(ctx, "uploads/00/nobody")
		require.NoError(t, err)
		require.False(t, ref)
		require.True(t, pending)

		_, err = s.CreateJob(ctx, store.NewJob{UserID: u.ID, URL: "upload:a.wav", CanonicalURL: "uploads/00/shared", SourceKind: job.SourceUpload})
		require.NoError(t, err)
		ds, err = s.ForgetUpload(ctx, "uploads/00/shared")
		require.NoError(t, err)
		require.Empty(t, ds, "a job has this file")
		ref, pending, err = s.UploadState(ctx, "uploads/00/shared")
		require.NoError(t, err)
		require.True(t, ref)
		require.False(t, pending)
	})
}

func TestOffersListWhatRecentNodesRun(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()
		offers, err := s.Offers(ctx, 10*time.Minute)
		require.NoError(t, err)
		require.Empty(t, offers)
		_, err = s.TouchAgent(ctx, "gpu-1", whispercpp, "v1", store.Slots{})
		require.NoError(t, err)
		_, err = s.TouchAgent(ctx, "gpu-2", sphinx, "v1", store.Slots{})
		require.NoError(t, err)
		offers, err = s.Offers(ctx, 10*time.Minute)
		require.NoError(t, err)
		require.ElementsMatch(t, slices.Concat(whispercpp, sphinx), offers, "each node's engines, as advertised")
		offers, err = s.Offers(ctx, -time.Minute) // seen "within the last -1 min": nobody
		require.NoError(t, err)
		require.Empty(t, offers)
	})
}

func TestCheckQuotaRefusesLikeCreation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()
		require.NoError(t, s.SetPlan(ctx, store.Plan{Name: "one", MaxConcurrent: 1}))
		u, err := s.CreateUser(ctx, "one-job", store.RoleUser, "one")
		require.NoError(t, err)
		require.NoError(t, s.CheckQuota(ctx, u.ID))
		create(t, s, u)
		require.Equal(t, job.CodeQuotaExceeded, job.CodeOf(s.CheckQuota(ctx, u.ID)))
	})
}
