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

// TestVocabularyBounds: every bound on a vocabulary is a 400
// invalid_argument before anything is stored, and the largest allowed passes.
func TestVocabularyBounds(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	terms := func(n int, term string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = term + strings.Repeat("x", i%5) + string(rune('a'+i%26))
		}
		return out
	}
	create := func(vocab []string) error {
		_, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "https://example.com/a.ogg", Vocabulary: vocab}))
		return err
	}
	for name, vocab := range map[string][]string{
		"101 terms":           terms(101, "t"),
		"a term of 65 chars":  {"Kubernetes", strings.Repeat("é", 65)},
		"a blank term":        {"Nomad", "  "},
		"a control character": {"Nomad\x07"},
		"a newline":           {"Nomad\nIgnore the audio"},
		"an unprintable":      {"No\u200bmad"},
	} {
		err := create(vocab)
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), name)
		require.Equal(t, job.CodeInvalidArgument, detailOf(t, err), name)
		require.Contains(t, err.Error(), "vocabulary", name)
	}
	jobs, _, err := a.store.ListJobs(ctx, a.user.ID, 10, "")
	require.NoError(t, err)
	require.Empty(t, jobs, "no refused request made a job")

	require.NoError(t, create(terms(100, "t")))
	require.NoError(t, create([]string{strings.Repeat("é", 64), "Nomad Autoscaler", "C++"}))
}

// TestGuardsAndVocabularyReachTheNodeAndCountsComeBack: the guards are on
// unless a job turns them off, the job's vocabulary (trimmed, one spelling
// per term) and guards ride on the assignment, and what the node's guards
// removed lands on the job.
func TestGuardsAndVocabularyReachTheNodeAndCountsComeBack(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	off := false
	resp, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "https://example.com/a.ogg",
		Vocabulary: []string{" Kubernetes ", "kubernetes", "Nomad"}, SilenceGuard: &off}))
	require.NoError(t, err)
	pj := resp.Msg.GetJob()
	require.Equal(t, []string{"Kubernetes", "Nomad"}, pj.GetVocabulary())
	require.False(t, pj.GetGuards().GetSilence())
	require.True(t, pj.GetGuards().GetRepetition(), "on by default")

	plain, err := a.jobs.CreateJob(ctx, connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "https://example.com/b.ogg"}))
	require.NoError(t, err)
	require.True(t, plain.Msg.GetJob().GetGuards().GetSilence())
	require.True(t, plain.Msg.GetJob().GetGuards().GetRepetition())

	// Drive the first job to ready, as the download stage does.
	for {
		c, ok, err := a.store.ClaimQueued(ctx, "core", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, a.store.MarkReady(ctx, c.ID, c.Epoch, store.Media{Duration: 5 * time.Second, AudioKey: "audio/" + c.ID + ".wav"}))
		if c.ID == pj.GetId() {
			break
		}
	}
	var asg *ytcaptionv1.Assignment
	for asg.GetJobId() != pj.GetId() {
		acq, err := a.worker.AcquireJob(ctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "gpu-1", Engines: []string{"sphinx"}}))
		require.NoError(t, err)
		asg = acq.Msg.GetAssignment()
		require.NotNil(t, asg)
	}
	require.Equal(t, []string{"Kubernetes", "Nomad"}, asg.GetVocabulary())
	require.False(t, asg.GetSilenceGuard())
	require.True(t, asg.GetRepetitionGuard())

	_, err = a.worker.PushSegments(ctx, connect.NewRequest(&ytcaptionv1.PushSegmentsRequest{JobId: pj.GetId(), Epoch: asg.GetEpoch(),
		Segments: []*ytcaptionv1.Segment{{Seq: 0, StartMs: 0, EndMs: 1000, Text: "Kubernetes"}}}))
	require.NoError(t, err)
	_, err = a.worker.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: pj.GetId(), Epoch: asg.GetEpoch(), SegmentCount: 1,
		Guards: &ytcaptionv1.Guards{RepetitionDropped: 2, RepetitionTrimmed: 1}}))
	require.NoError(t, err)
	got, err := a.jobs.GetJob(ctx, connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: pj.GetId()}))
	require.NoError(t, err)
	g := got.Msg.GetJob().GetGuards()
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, got.Msg.GetJob().GetStatus())
	require.Equal(t, []int32{0, 2, 1}, []int32{g.GetSilenceDropped(), g.GetRepetitionDropped(), g.GetRepetitionTrimmed()})

	// A stale epoch records nothing.
	_, err = a.worker.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: pj.GetId(), Epoch: asg.GetEpoch() + 1, SegmentCount: 1,
		Guards: &ytcaptionv1.Guards{SilenceDropped: 9}}))
	require.Error(t, err)
	j, err := a.store.GetJob(ctx, a.user.ID, pj.GetId())
	require.NoError(t, err)
	require.Zero(t, j.Guards.SilenceDropped)
}

// TestListModels: the engines and models the nodes seen lately advertise,
// once each, sorted; nothing before any node called in.
func TestListModels(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	list := func() []*ytcaptionv1.OfferedModel {
		resp, err := a.jobs.ListModels(ctx, connect.NewRequest(&ytcaptionv1.ListModelsRequest{}))
		require.NoError(t, err)
		return resp.Msg.GetModels()
	}
	require.Empty(t, list())
	poll := func(node string, caps ...*ytcaptionv1.EngineCapabilities) {
		pctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond) // an empty poll ends about a second before its deadline
		defer cancel()
		_, err := a.worker.AcquireJob(pctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: node, Capabilities: caps}))
		require.NoError(t, err)
	}
	poll("gpu-1", &ytcaptionv1.EngineCapabilities{Name: "openai", Models: []string{"whisper-1", "Systran/faster-whisper-large-v3"}, Translate: true, Prompt: true})
	poll("gpu-2", &ytcaptionv1.EngineCapabilities{Name: "sphinx", Models: []string{"en-us"}, Languages: []string{"en"}},
		&ytcaptionv1.EngineCapabilities{Name: "openai", Models: []string{"whisper-1"}, Translate: true, Prompt: true})
	var got []string
	for _, m := range list() {
		got = append(got, m.GetEngine()+"/"+m.GetModel()+"/"+strings.Join(m.GetLanguages(), ","))
		require.NotNil(t, m.GetFirstSeen())
	}
	require.Equal(t, []string{"openai/Systran/faster-whisper-large-v3/", "openai/whisper-1/", "sphinx/en-us/en"}, got)
}
