package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// advertise has a gpu-node poll once with caps, so that core counts them
// as on offer.
func advertise(t *testing.T, a *testAPI, node string, caps ...*ytcaptionv1.EngineCapabilities) *ytcaptionv1.Assignment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	acq, err := a.worker.AcquireJob(ctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: node, Capabilities: caps}))
	require.NoError(t, err)
	return acq.Msg.GetAssignment()
}

var (
	plainOpenAI     = &ytcaptionv1.EngineCapabilities{Name: "openai", Models: []string{"whisper-1"}, Translate: true, Prompt: true}
	diarizingOpenAI = &ytcaptionv1.EngineCapabilities{Name: "openai", Models: []string{"gpt-4o-transcribe-diarize"}, Speakers: true}
)

// TestSpeakerOptionsAreCheckedAtCreation: each bound is refused before a
// job exists, and a speakers job no node can label is refused as
// unsupported, like an engine nobody runs.
func TestSpeakerOptionsAreCheckedAtCreation(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	advertise(t, a, "plain", plainOpenAI)
	const url = "http://example.com/talk.ogg"
	for _, tc := range []struct {
		name string
		req  *ytcaptionv1.CreateJobRequest
		code string
	}{
		{"bounds without speakers", &ytcaptionv1.CreateJobRequest{Url: url, MaxSpeakers: 2}, job.CodeInvalidArgument},
		{"more than 32", &ytcaptionv1.CreateJobRequest{Url: url, Speakers: true, MaxSpeakers: 33}, job.CodeInvalidArgument},
		{"negative", &ytcaptionv1.CreateJobRequest{Url: url, Speakers: true, MinSpeakers: -1}, job.CodeInvalidArgument},
		{"min above max", &ytcaptionv1.CreateJobRequest{Url: url, Speakers: true, MinSpeakers: 3, MaxSpeakers: 2}, job.CodeInvalidArgument},
		{"from captions", &ytcaptionv1.CreateJobRequest{Url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ", Speakers: true, Source: "captions"}, job.CodeInvalidArgument},
		{"no node labels speakers", &ytcaptionv1.CreateJobRequest{Url: url, Speakers: true}, job.CodeUnsupported},
	} {
		_, err := a.jobs.CreateJob(ctx, connect.NewRequest(tc.req))
		require.Equal(t, tc.code, detailOf(t, err), "%s: %v", tc.name, err)
	}
	list, err := a.jobs.ListJobs(ctx, connect.NewRequest(&ytcaptionv1.ListJobsRequest{}))
	require.NoError(t, err)
	require.Empty(t, list.Msg.GetJobs(), "no refused request made a job")

	advertise(t, a, "diarizing", diarizingOpenAI)
	res, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: url, Speakers: true, MinSpeakers: 2, MaxSpeakers: 2}))
	require.NoError(t, err)
	got := res.Msg.GetJob()
	require.True(t, got.GetSpeakers())
	require.Equal(t, [2]int32{2, 2}, [2]int32{got.GetMinSpeakers(), got.GetMaxSpeakers()})
	require.Equal(t, "asr", got.GetSource(), "captions have no speakers: auto means speech")
}

// TestSpeakersThroughCore: a speakers job goes only to the node that labels
// speakers, with its bounds; the labels the node pushes come back in the
// transcript, and the owner's names replace them in every format — nobody
// else may rename them, and the names are bounded.
func TestSpeakersThroughCore(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	advertise(t, a, "diarizing", diarizingOpenAI)
	res, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://example.com/talk.ogg", Speakers: true, MaxSpeakers: 4}))
	require.NoError(t, err)
	id := res.Msg.GetJob().GetId()
	c, ok, err := a.store.ClaimQueued(ctx, "core", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, a.store.MarkReady(ctx, c.ID, c.Epoch, store.Media{AudioKey: "audio/" + c.ID + ".wav", Duration: 4 * time.Second}))

	require.Nil(t, advertise(t, a, "plain", plainOpenAI), "a node that labels no speakers never gets the job")
	asg := advertise(t, a, "diarizing", diarizingOpenAI)
	require.NotNil(t, asg)
	require.Equal(t, id, asg.GetJobId())
	require.True(t, asg.GetSpeakers())
	require.Equal(t, int32(4), asg.GetMaxSpeakers())

	long := strings.Repeat("x", 200)
	_, err = a.worker.PushSegments(ctx, connect.NewRequest(&ytcaptionv1.PushSegmentsRequest{JobId: id, Epoch: asg.GetEpoch(), Segments: []*ytcaptionv1.Segment{
		{Seq: 0, StartMs: 0, EndMs: 1500, Text: "Hello there.", Speaker: "Speaker 1", Words: []*ytcaptionv1.Word{
			{StartMs: 0, EndMs: 600, Text: "Hello", Speaker: "Speaker 1"}, {StartMs: 700, EndMs: 1500, Text: "there.", Speaker: "Speaker 1"}}},
		{Seq: 1, StartMs: 1600, EndMs: 3000, Text: "Hi, Alice.", Speaker: "Speaker 2"},
		{Seq: 2, StartMs: 3000, EndMs: 3500, Text: "Who?", Speaker: long},
	}}))
	require.NoError(t, err)
	_, err = a.worker.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: id, Epoch: asg.GetEpoch(), SegmentCount: 3}))
	require.NoError(t, err)

	transcript := func(f ytcaptionv1.TranscriptFormat) string {
		t.Helper()
		r, err := a.jobs.GetTranscript(ctx, connect.NewRequest(&ytcaptionv1.GetTranscriptRequest{Id: id, Format: f}))
		require.NoError(t, err)
		return string(r.Msg.GetContent())
	}
	vtt := transcript(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT)
	require.Contains(t, vtt, "<v Speaker 1>Hello there.")
	require.Contains(t, vtt, "<v Speaker 2>Hi, Alice.")
	require.Contains(t, vtt, "<v "+strings.Repeat("x", maxLabelChars)+">Who?", "a node's label is cut to the bound")

	// The bounds of a rename, each refused without touching the job.
	names := map[string]string{}
	for i := range MaxSpeakers + 1 {
		names["Speaker "+strings.Repeat("1", i+1)] = "n"
	}
	for _, bad := range []map[string]string{
		names,
		{"Speaker 1": strings.Repeat("é", MaxSpeakerNameChars+1)},
		{"Speaker 1": ""},
		{"Speaker 1": "Alice\n00:00:09.000 --> 00:00:10.000"},
		{"Speaker 1": "Al\x1bice"},
		{"Speaker 1": " Alice"},
		{strings.Repeat("S", MaxSpeakerNameChars+1): "Alice"},
	} {
		_, err := a.jobs.RenameSpeakers(ctx, connect.NewRequest(&ytcaptionv1.RenameSpeakersRequest{Id: id, Names: bad}))
		require.Equal(t, job.CodeInvalidArgument, detailOf(t, err), "%.80q", bad)
	}
	bob, err := a.store.EnsureUser(ctx, "bob", store.RoleUser)
	require.NoError(t, err)
	_, err = a.jobsFor(bob.ID).RenameSpeakers(ctx, connect.NewRequest(&ytcaptionv1.RenameSpeakersRequest{Id: id, Names: map[string]string{"Speaker 1": "Mallory"}}))
	require.Equal(t, job.CodeNotFound, detailOf(t, err), "another user's job is not found")
	require.Equal(t, vtt, transcript(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT), "refused renames changed nothing")

	r, err := a.jobs.RenameSpeakers(ctx, connect.NewRequest(&ytcaptionv1.RenameSpeakersRequest{Id: id, Names: map[string]string{"Speaker 1": "Bob", "Speaker 2": "Alice <3"}}))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"Speaker 1": "Bob", "Speaker 2": "Alice <3"}, r.Msg.GetJob().GetSpeakerNames())
	vtt = transcript(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT)
	require.Contains(t, vtt, "<v Bob>Hello there.")
	require.Contains(t, vtt, "<v Alice &lt;3>Hi, Alice.")
	require.Contains(t, transcript(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_SRT), "[Bob] Hello there.")
	require.Contains(t, transcript(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TXT), "Alice <3: Hi, Alice.")
	require.Contains(t, transcript(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_JSON), `"speaker": "Bob"`)
	require.Contains(t, transcript(ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TSV), "\tBob\t")

	plain, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "http://example.com/other.ogg"}))
	require.NoError(t, err)
	_, err = a.jobs.RenameSpeakers(ctx, connect.NewRequest(&ytcaptionv1.RenameSpeakersRequest{Id: plain.Msg.GetJob().GetId(), Names: map[string]string{"Speaker 1": "Bob"}}))
	require.Equal(t, job.CodeInvalidArgument, detailOf(t, err), "a job without speakers has no labels to rename")
}
