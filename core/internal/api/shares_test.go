package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/clocktest"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/sharetoken"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// sharesOf is the ShareService as the edge calls it: its token, no user.
func (a *testAPI) sharesOf() ytcaptionv1connect.ShareServiceClient {
	return ytcaptionv1connect.NewShareServiceClient(asUser(testServiceToken, ""), a.URL)
}

func TestShareLinksOpenTheTranscriptWithoutAKeyAndNothingOfItsOwner(t *testing.T) {
	t.Parallel()
	clock := clocktest.New()
	a := newTestAPI(t, func(c *Config) { c.Now = clock.Now })
	ctx := context.Background()
	j := finished(t, a.store, a.user.ID, 3)

	created, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID}))
	require.NoError(t, err)
	token := created.Msg.GetToken()
	require.True(t, sharetoken.Valid(token), token)
	require.Equal(t, clock.Now().Add(7*24*time.Hour), created.Msg.GetShare().GetExpiresAt().AsTime(), "seven days by default")
	require.Nil(t, created.Msg.GetShare().Revision, "the latest revision")

	got, err := a.sharesOf().GetSharedJob(ctx, connect.NewRequest(&ytcaptionv1.GetSharedJobRequest{Token: token}))
	require.NoError(t, err)
	require.Equal(t, j.ID, got.Msg.GetJob().GetId())
	require.Equal(t, "en", got.Msg.GetJob().GetLanguage())
	require.InDelta(t, 60, got.Msg.GetJob().GetDurationSeconds(), 0.001)
	require.Len(t, got.Msg.GetSegments(), 3)
	require.Equal(t, "The quick brown fox", got.Msg.GetSegments()[0].GetText())
	raw, err := protojson.Marshal(got.Msg)
	require.NoError(t, err)
	for _, secret := range []string{a.user.ID, a.user.Name, token, "example.com/a.ogg"} {
		require.NotContains(t, string(raw), secret, "the shared job shows nothing of its owner, its URL or the link's token")
	}

	for f := range formats {
		if f == ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_UNSPECIFIED {
			continue
		}
		tr, err := a.sharesOf().GetSharedTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetSharedTranscriptRequest{Token: token,
			Transcript: &ytcaptionv1.GetTranscriptRequest{Format: f, Id: "ignored"}}))
		require.NoError(t, err, f)
		require.Contains(t, string(tr.Msg.GetContent()), "quick brown fox", f)
		own, err := a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: j.ID, Format: f}))
		require.NoError(t, err)
		require.Equal(t, own.Msg.GetContent(), tr.Msg.GetContent(), "%v: the owner's file", f)
		require.Equal(t, own.Msg.GetContentType(), tr.Msg.GetContentType())
	}

	// Without the edge's service token, nothing opens.
	anon := ytcaptionv1connect.NewShareServiceClient(asUser("wrong-token", ""), a.URL)
	_, err = anon.GetSharedJob(ctx, connect.NewRequest(&ytcaptionv1.GetSharedJobRequest{Token: token}))
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
}

// TestShareLinksAreTheOwnersAlone: another user can neither make a link of
// the owner's job nor list or revoke its links — each is not_found, as for
// a job that does not exist.
func TestShareLinksAreTheOwnersAlone(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j := finished(t, a.store, a.user.ID, 2)
	bob, err := a.store.EnsureUser(ctx, "bob", store.RoleUser)
	require.NoError(t, err)
	asBob := a.jobsFor(bob.ID)

	created, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID}))
	require.NoError(t, err)
	id := created.Msg.GetShare().GetId()

	_, err = asBob.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	_, err = asBob.ListShares(ctx, connect.NewRequest(&ytcaptionv1.ListSharesRequest{JobId: j.ID}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	_, err = asBob.RevokeShare(ctx, connect.NewRequest(&ytcaptionv1.RevokeShareRequest{JobId: j.ID, ShareId: id}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	// Bob's own job does not let him reach Alice's link either.
	bobs := finished(t, a.store, bob.ID, 2)
	_, err = asBob.RevokeShare(ctx, connect.NewRequest(&ytcaptionv1.RevokeShareRequest{JobId: bobs.ID, ShareId: id}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))

	list, err := a.jobs.ListShares(ctx, connect.NewRequest(&ytcaptionv1.ListSharesRequest{JobId: j.ID}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetShares(), 1)
	require.Nil(t, list.Msg.GetShares()[0].GetRevokedAt(), "bob revoked nothing")
}

func TestShareLinksRefuseBadRequests(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j := finished(t, a.store, a.user.ID, 2)
	for _, secs := range []int64{-1, 59, 90*24*3600 + 1, 1 << 62} {
		_, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID, ExpiresInSeconds: secs}))
		require.Equal(t, errcode.InvalidArgument, detailOf(t, err), secs)
	}
	for _, secs := range []int64{60, 90 * 24 * 3600} {
		_, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID, ExpiresInSeconds: secs}))
		require.NoError(t, err, secs)
	}
	neg := int32(-1)
	_, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID, Revision: &neg}))
	require.Equal(t, errcode.InvalidArgument, detailOf(t, err))

	running, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://127.0.0.1:9/a.ogg"}))
	require.NoError(t, err)
	_, err = a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: running.Msg.GetJob().GetId()}))
	require.Equal(t, errcode.JobNotFinished, detailOf(t, err))
}

// TestAShareLinkThatDoesNotOpenSaysNothingMore: an unknown, malformed,
// expired or revoked token, or one whose job was deleted, gets one and the
// same answer — the moment it is revoked or expires.
func TestAShareLinkThatDoesNotOpenSaysNothingMore(t *testing.T) {
	t.Parallel()
	clock := clocktest.New()
	a := newTestAPI(t, func(c *Config) { c.Now = clock.Now })
	ctx := context.Background()
	open := func(token string) error {
		_, err := a.sharesOf().GetSharedJob(ctx, connect.NewRequest(&ytcaptionv1.GetSharedJobRequest{Token: token}))
		_, terr := a.sharesOf().GetSharedTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetSharedTranscriptRequest{Token: token}))
		_, aerr := a.sharesOf().GetSharedAudio(ctx, connect.NewRequest(&ytcaptionv1.GetSharedAudioRequest{Token: token}))
		require.Equal(t, connect.CodeOf(err), connect.CodeOf(terr), "%v / %v", err, terr)
		if err != nil {
			require.Equal(t, err.Error(), terr.Error())
			require.Equal(t, err.Error(), aerr.Error(), "the audio of a link that does not open")
		} else {
			// These jobs have no stored audio: a link that opens says so.
			require.Equal(t, errcode.AudioNotFound, detailOf(t, aerr))
		}
		return err
	}
	share := func(jobID string, secs int64) (string, string) {
		r, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: jobID, ExpiresInSeconds: secs}))
		require.NoError(t, err)
		return r.Msg.GetToken(), r.Msg.GetShare().GetId()
	}
	j := finished(t, a.store, a.user.ID, 2)
	unknown, _ := sharetoken.New()
	refusal := open(unknown)
	require.Equal(t, errcode.ShareNotFound, detailOf(t, refusal))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(refusal))
	same := func(err error, why string) {
		t.Helper()
		require.Error(t, err, why)
		require.Equal(t, refusal.Error(), err.Error(), why)
		require.Equal(t, errcode.ShareNotFound, detailOf(t, err), why)
	}

	expiring, _ := share(j.ID, 60)
	require.NoError(t, open(expiring))
	clock.Advance(59 * time.Second)
	require.NoError(t, open(expiring))
	clock.Advance(time.Second)
	same(open(expiring), "expired")

	revoked, id := share(j.ID, 0)
	require.NoError(t, open(revoked))
	_, err := a.jobs.RevokeShare(ctx, connect.NewRequest(&ytcaptionv1.RevokeShareRequest{JobId: j.ID, ShareId: id}))
	require.NoError(t, err)
	same(open(revoked), "revoked")
	_, err = a.jobs.RevokeShare(ctx, connect.NewRequest(&ytcaptionv1.RevokeShareRequest{JobId: j.ID, ShareId: id}))
	require.NoError(t, err, "revoking again")

	deleted, _ := share(j.ID, 0)
	_, err = a.jobs.DeleteJob(ctx, connect.NewRequest(&ytcaptionv1.DeleteJobRequest{Id: j.ID}))
	require.NoError(t, err)
	same(open(deleted), "the job deleted")

	// Malformed tokens are refused before the store is asked: with the
	// database closed, they still get the same answer, where a well-formed
	// one cannot be looked up.
	a.db.Close()
	for _, bad := range []string{"", "x", unknown[:42], unknown + "A", "../" + unknown[3:], strings.Repeat("é", 21) + "A", unknown[:42] + "=", strings.Repeat("A", 4096)} {
		same(open(bad), bad)
	}
	_, err = a.sharesOf().GetSharedJob(ctx, connect.NewRequest(&ytcaptionv1.GetSharedJobRequest{Token: unknown}))
	require.Error(t, err)
	require.NotEqual(t, errcode.ShareNotFound, detail(t, err), "a closed database cannot say a well-formed token is unknown")
}

// TestASharedJobSaysWhichRevisionItShows: a link pinned to a revision shows
// that revision and says so after later saves; an unpinned one shows, and
// names, the latest when it is opened. A revision the job does not have
// cannot be pinned.
func TestASharedJobSaysWhichRevisionItShows(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j := finished(t, a.store, a.user.ID, 2)
	_, err := save(ctx, a.jobs, j.ID, 0, &ytcaptionv1.RevisionCue{StartMs: 0, EndMs: 1500, Text: "The first edit"})
	require.NoError(t, err)
	link := func(pin *int32) string {
		t.Helper()
		r, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID, Revision: pin}))
		require.NoError(t, err)
		return r.Msg.GetToken()
	}
	pinned, latest := link(rev(1)), link(nil)
	_, err = save(ctx, a.jobs, j.ID, 1, &ytcaptionv1.RevisionCue{StartMs: 0, EndMs: 1500, Text: "The second edit"})
	require.NoError(t, err)

	shows := func(token string) (int32, string) {
		t.Helper()
		got, err := a.sharesOf().GetSharedJob(ctx, connect.NewRequest(&ytcaptionv1.GetSharedJobRequest{Token: token}))
		require.NoError(t, err)
		require.Len(t, got.Msg.GetSegments(), 1)
		return got.Msg.GetJob().GetRevision(), got.Msg.GetSegments()[0].GetText()
	}
	r, text := shows(pinned)
	require.Equal(t, int32(1), r, "the pinned revision")
	require.Equal(t, "The first edit", text)
	r, text = shows(latest)
	require.Equal(t, int32(2), r, "the latest, saved after the link was made")
	require.Equal(t, "The second edit", text)

	_, err = a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID, Revision: rev(3)}))
	require.Equal(t, errcode.RevisionNotFound, detailOf(t, err), "the job's latest is 2")
}

// TestASharedTranscriptIsTheRevisionItsLinkShows: the file a link serves is
// the revision its page shows — the pinned one, else the latest — whatever
// revision its reader asks for: a link to an edit does not open the
// original, nor a pinned one a later edit.
func TestASharedTranscriptIsTheRevisionItsLinkShows(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	j := finished(t, a.store, a.user.ID, 2)
	for base, text := range []string{"The first edit", "The second edit"} {
		_, err := save(ctx, a.jobs, j.ID, int32(base), &ytcaptionv1.RevisionCue{StartMs: 0, EndMs: 1500, Text: text})
		require.NoError(t, err)
	}
	link := func(pin *int32) string {
		t.Helper()
		r, err := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: j.ID, Revision: pin}))
		require.NoError(t, err)
		return r.Msg.GetToken()
	}
	file := func(token string, asked *int32) string {
		t.Helper()
		tr, err := a.sharesOf().GetSharedTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetSharedTranscriptRequest{Token: token,
			Transcript: &ytcaptionv1.GetTranscriptRequest{Format: ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TXT, Revision: asked}}))
		require.NoError(t, err)
		return string(tr.Msg.GetContent())
	}
	pinned, latest := link(rev(1)), link(nil)
	for _, asked := range []*int32{nil, rev(0), rev(1), rev(2), rev(7)} {
		require.Contains(t, file(pinned, asked), "The first edit", "asked for %v", asked)
		require.Contains(t, file(latest, asked), "The second edit", "asked for %v", asked)
	}
}

// TestAJobIsSharedWhenItsTranscriptCanBeRead: sharing a failed or cancelled
// job gets the answer reading its transcript gets — the same code, so a
// client can tell why — and a job whose transcript can be read can be
// shared.
func TestAJobIsSharedWhenItsTranscriptCanBeRead(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	newJob := func() string {
		t.Helper()
		r, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://127.0.0.1:9/" + uuid.NewString() + ".ogg"}))
		require.NoError(t, err)
		return r.Msg.GetJob().GetId()
	}
	failed := newJob()
	c, ok, err := a.store.ClaimQueued(ctx, "core-1", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, failed, c.ID)
	_, err = a.store.Fail(ctx, c.ID, c.Epoch, &job.Error{Code: job.CodeEngineFailed, Message: "boom"})
	require.NoError(t, err)
	cancelled := newJob()
	_, err = a.jobs.CancelJob(ctx, connect.NewRequest(&ytcaptionv1.CancelJobRequest{Id: cancelled}))
	require.NoError(t, err)

	for name, id := range map[string]string{"failed": failed, "cancelled": cancelled} {
		_, readErr := a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: id}))
		_, shareErr := a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: id}))
		if readErr == nil {
			require.NoError(t, shareErr, name)
			continue
		}
		require.Equal(t, detailOf(t, readErr), detailOf(t, shareErr), "%s: %v / %v", name, readErr, shareErr)
		require.Equal(t, connect.CodeOf(readErr), connect.CodeOf(shareErr), name)
	}
	_, err = a.jobs.CreateShare(ctx, connect.NewRequest(&ytcaptionv1.CreateShareRequest{JobId: failed}))
	require.Equal(t, errcode.NotReady, detailOf(t, err), "a failed job has no transcript to share")
}
