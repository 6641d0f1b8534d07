package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

func save(ctx context.Context, jobs interface {
	SaveTranscript(context.Context, *connect.Request[ytcaptionv1.SaveTranscriptRequest]) (*connect.Response[ytcaptionv1.SaveTranscriptResponse], error)
}, id string, base int32, cues ...*ytcaptionv1.RevisionCue) (*ytcaptionv1.Revision, error) {
	resp, err := jobs.SaveTranscript(ctx, connect.NewRequest(&ytcaptionv1.SaveTranscriptRequest{Id: id, BaseRevision: base, Cues: cues}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetRevision(), nil
}

func (a *testAPI) rendered(t *testing.T, id string, rev *int32) string {
	t.Helper()
	resp, err := a.jobs.GetTranscript(context.Background(), connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{
		Id: id, Format: ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TSV, Revision: rev}))
	require.NoError(t, err)
	return string(resp.Msg.GetContent())
}

func rev(n int32) *int32 { return &n }

// TestRevisionsThroughCore: a save is the next revision; the transcript is
// the latest unless a revision is asked for, revision 0 stays the machine's
// after edits, an unknown revision is revision_not_found, a save from a
// stale base is revision_conflict naming the latest, the speaker names of
// a save apply to every revision, and another user's job is not found by
// any of the calls.
func TestRevisionsThroughCore(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	id := succeededWithWords(t, a)
	machine := a.rendered(t, id, nil)
	require.Contains(t, machine, "one two three")

	r1, err := save(ctx, a.jobs, id, 0,
		&ytcaptionv1.RevisionCue{StartMs: 1000, EndMs: 4000, Text: "one two three", Speaker: "Speaker 1"},
		&ytcaptionv1.RevisionCue{StartMs: 4000, EndMs: 6000, Text: "an added cue"})
	require.NoError(t, err)
	require.Equal(t, int32(1), r1.GetRevision())
	require.Equal(t, int32(2), r1.GetSegmentCount())
	got, err := a.jobs.GetJob(ctx, connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: id}))
	require.NoError(t, err)
	require.Equal(t, int32(1), got.Msg.GetJob().GetRevision())

	require.Contains(t, a.rendered(t, id, nil), "an added cue", "the latest revision by default")
	require.Equal(t, machine, a.rendered(t, id, rev(0)), "revision 0 is the machine's, unchanged")
	_, err = a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: id, Revision: rev(2)}))
	require.Equal(t, errcode.RevisionNotFound, detailOf(t, err))
	_, err = a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: id, Revision: rev(-1)}))
	require.Equal(t, errcode.RevisionNotFound, detailOf(t, err))

	// The unchanged cue kept its words; the edited ones have none.
	j, err := a.store.GetJob(ctx, "", id)
	require.NoError(t, err)
	segs, err := a.store.RevisionSegments(ctx, j, 1)
	require.NoError(t, err)
	require.Len(t, segs[0].Words, 3)
	require.Equal(t, "Speaker 1", segs[0].Words[0].Speaker, "the words say who speaks, as the cue")
	require.Nil(t, segs[1].Words)
	r2, err := save(ctx, a.jobs, id, 1, &ytcaptionv1.RevisionCue{StartMs: 1000, EndMs: 4000, Text: "one, two, three"})
	require.NoError(t, err)
	j, err = a.store.GetJob(ctx, "", id)
	require.NoError(t, err)
	segs, err = a.store.RevisionSegments(ctx, j, int(r2.GetRevision()))
	require.NoError(t, err)
	require.Nil(t, segs[0].Words, "an edited text's words no longer match it")

	_, err = save(ctx, a.jobs, id, 1, &ytcaptionv1.RevisionCue{StartMs: 0, EndMs: 1000, Text: "stale"})
	require.Equal(t, errcode.RevisionConflict, detailOf(t, err))
	require.Contains(t, err.Error(), "latest revision of job "+id+" is 2")
	require.Contains(t, a.rendered(t, id, nil), "one, two, three", "the refused save stored nothing")

	// Names given with a save show in every revision.
	_, err = a.jobs.SaveTranscript(ctx, connect.NewRequest(&ytcaptionv1.SaveTranscriptRequest{Id: id, BaseRevision: 2,
		Cues:           []*ytcaptionv1.RevisionCue{{StartMs: 1000, EndMs: 4000, Text: "one two three", Speaker: "Speaker 1"}},
		RenameSpeakers: true, SpeakerNames: map[string]string{"Speaker 1": "Alice"}}))
	require.NoError(t, err)
	require.Contains(t, a.rendered(t, id, nil), "Alice")
	require.Contains(t, a.rendered(t, id, rev(1)), "Alice")

	revs, err := a.jobs.ListRevisions(ctx, connect.NewRequest(&ytcaptionv1.ListRevisionsRequest{Id: id}))
	require.NoError(t, err)
	var counts []int32
	for _, r := range revs.Msg.GetRevisions() {
		require.Len(t, counts, int(r.GetRevision()))
		counts = append(counts, r.GetSegmentCount())
	}
	require.Equal(t, []int32{1, 2, 1, 1}, counts)

	bob, err := a.store.EnsureUser(ctx, "bob", store.RoleUser)
	require.NoError(t, err)
	other := a.jobsFor(bob.ID)
	_, err = save(ctx, other, id, 3, &ytcaptionv1.RevisionCue{StartMs: 0, EndMs: 1000, Text: "mallory was here"})
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	_, err = other.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: id, Revision: rev(1)}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	_, err = other.ListRevisions(ctx, connect.NewRequest(&ytcaptionv1.ListRevisionsRequest{Id: id}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	_, err = other.GetJobAudio(ctx, connect.NewRequest(&ytcaptionv1.GetJobAudioRequest{Id: id}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))
	require.NotContains(t, a.rendered(t, id, nil), "mallory")
}

// TestConcurrentSavesFromOneBaseOneWins: N saves from the same base at once
// — two browser tabs, or a script racing the editor — make exactly one
// revision; every other save is revision_conflict.
func TestConcurrentSavesFromOneBaseOneWins(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	id := succeededWithWords(t, a)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = save(context.Background(), a.jobs, id, 0, &ytcaptionv1.RevisionCue{StartMs: 0, EndMs: 1000, Text: fmt.Sprintf("tab %d", i)})
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		require.Equal(t, errcode.RevisionConflict, detailOf(t, err), "%v", err)
	}
	require.Equal(t, 1, won)
	revs, err := a.jobs.ListRevisions(context.Background(), connect.NewRequest(&ytcaptionv1.ListRevisionsRequest{Id: id}))
	require.NoError(t, err)
	require.Len(t, revs.Msg.GetRevisions(), 2, "revision 0 and the one that won")
}

// TestSaveTranscriptBounds: each bound on an edited transcript is refused
// with invalid_transcript naming the cue, before anything is stored.
func TestSaveTranscriptBounds(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	id := succeededWithWords(t, a)
	ok := func(i int) *ytcaptionv1.RevisionCue {
		return &ytcaptionv1.RevisionCue{StartMs: int64(i) * 1000, EndMs: int64(i)*1000 + 500, Text: "fine"}
	}
	many := make([]*ytcaptionv1.RevisionCue, MaxRevisionCues+1)
	for i := range many {
		many[i] = &ytcaptionv1.RevisionCue{StartMs: int64(i), EndMs: int64(i) + 1, Text: "x"}
	}
	for _, tc := range []struct {
		name string // the attack it stops
		cues []*ytcaptionv1.RevisionCue
		msg  string
	}{
		{"a flood of cues, to fill the database", many, "at most 20000 cues"},
		{"a negative start, to break the formats' time stamps", []*ytcaptionv1.RevisionCue{ok(0), {StartMs: -1, EndMs: 10, Text: "x"}}, "cue 1: start"},
		{"an end before its start", []*ytcaptionv1.RevisionCue{{StartMs: 500, EndMs: 500, Text: "x"}}, "cue 0: end"},
		{"a cue years long, to overflow time stamps", []*ytcaptionv1.RevisionCue{{StartMs: 0, EndMs: 1 << 62, Text: "x"}}, "cue 0: end"},
		{"unordered cues", []*ytcaptionv1.RevisionCue{ok(2), ok(1)}, "cue 1: starts at"},
		{"an empty text", []*ytcaptionv1.RevisionCue{ok(0), ok(1), {StartMs: 5000, EndMs: 6000, Text: "  "}}, "cue 2: text is empty"},
		{"a text of megabytes in one cue", []*ytcaptionv1.RevisionCue{{StartMs: 0, EndMs: 1, Text: strings.Repeat("é", MaxCueChars+1)}}, "cue 0: text is 2001 characters"},
		{"a blank line, to forge an SRT cue", []*ytcaptionv1.RevisionCue{{StartMs: 0, EndMs: 1, Text: "a\n\n99\n00:00:00,000 --> 00:00:09,000\nforged"}}, "cue 0: text holds a control character"},
		{"an overlong speaker label", []*ytcaptionv1.RevisionCue{{StartMs: 0, EndMs: 1, Text: "x", Speaker: strings.Repeat("s", 65)}}, "cue 0: a speaker"},
	} {
		_, err := save(ctx, a.jobs, id, 0, tc.cues...)
		require.Equal(t, errcode.InvalidTranscript, detailOf(t, err), tc.name)
		require.Contains(t, err.Error(), tc.msg, tc.name)
	}
	_, err := a.jobs.SaveTranscript(ctx, connect.NewRequest(&ytcaptionv1.SaveTranscriptRequest{Id: id, Cues: []*ytcaptionv1.RevisionCue{ok(0)},
		RenameSpeakers: true, SpeakerNames: map[string]string{"Speaker 1": strings.Repeat("n", 65)}}))
	require.Equal(t, errcode.InvalidArgument, detailOf(t, err), "names are bounded as PATCH's")
	j, err := a.store.GetJob(ctx, "", id)
	require.NoError(t, err)
	require.Zero(t, j.Revision, "no refused save stored a revision")

	// A job still running has no transcript to edit.
	running := readyJob(ctx, t, a, "http://example.com/running.ogg")
	_, err = save(ctx, a.jobs, running.ID, 0, ok(0))
	require.Equal(t, errcode.JobNotFinished, detailOf(t, err))
}

// TestGetJobAudio: the owner's job's stored audio is presigned (Range
// requests answered by the blob store); a job without audio — retention
// removed it — is audio_not_found.
func TestGetJobAudio(t *testing.T) {
	t.Parallel()
	// Core serves a blob directory's presigned URLs on its own listener.
	blobs, err := blob.OpenDir(t.TempDir(), "")
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(blob.DirPath, blobs)
	blobSrv := httptest.NewServer(mux)
	t.Cleanup(blobSrv.Close)
	blobs.DefaultBaseURL(blobSrv.URL)
	a := newTestAPIWith(t, nil, func(d *Deps) { d.Blobs = blobs })
	ctx := context.Background()
	j := readyJob(ctx, t, a, "http://example.com/talk.ogg")
	wav := bytes.Repeat([]byte("RIFF0123"), 1000)
	require.NoError(t, blobs.Put(ctx, "audio/"+j.ID+".wav", bytes.NewReader(wav), int64(len(wav)), "audio/wav"))

	resp, err := a.jobs.GetJobAudio(ctx, connect.NewRequest(&ytcaptionv1.GetJobAudioRequest{Id: j.ID}))
	require.NoError(t, err)
	require.Equal(t, "audio/wav", resp.Msg.GetContentType())
	require.WithinDuration(t, time.Now().Add(audioURLTTL), resp.Msg.GetExpiresAt().AsTime(), time.Minute)
	req, err := http.NewRequest(http.MethodGet, resp.Msg.GetUrl(), nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=8-15")
	got, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusPartialContent, got.StatusCode)
	require.Equal(t, wav[8:16], body)

	_, err = a.store.CancelJob(ctx, a.user.ID, j.ID) // finished: only finished jobs' audio expires
	require.NoError(t, err)
	_, err = a.store.ExpireAudio(ctx, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	_, err = a.jobs.GetJobAudio(ctx, connect.NewRequest(&ytcaptionv1.GetJobAudioRequest{Id: j.ID}))
	require.Equal(t, errcode.AudioNotFound, detailOf(t, err))
}
