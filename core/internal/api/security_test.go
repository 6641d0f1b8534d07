package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/engines"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/bombtest"
	"github.com/ytcaption/ytcaption/internal/pgtest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// postConnect sends body to a Connect unary procedure as the Connect
// protocol does, and returns the HTTP status and the error's code.
func postConnect(t *testing.T, url, procedure, token string, body []byte, gzipped bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+procedure, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/proto")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var e struct{ Code string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Code
}

// TestRequestSizeLimitsHoldInflatedPerMethod throws gzip bombs and
// oversized bodies at core's handlers, with no token, the wrong one and the
// right one: each is refused before it is read whole — unauthenticated from
// the headers, or resource_exhausted at the limit — while UploadJob,
// on its own route, still takes files far above the small limit.
func TestRequestSizeLimitsHoldInflatedPerMethod(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	bomb := bombtest.Gzip(64) // 64 KB inflating to 64 MiB
	plain := make([]byte, 3<<20)
	for _, p := range []string{
		ytcaptionv1connect.JobServiceCreateJobProcedure,
		ytcaptionv1connect.JobServiceUploadJobProcedure,
		ytcaptionv1connect.WorkerServicePushSegmentsProcedure,
		ytcaptionv1connect.WorkerServiceAcquireJobProcedure,
		ytcaptionv1connect.AuthServiceAuthenticateProcedure,
		ytcaptionv1connect.AdminServiceListUsersProcedure,
	} {
		right := testServiceToken
		if strings.HasPrefix(p, "/"+ytcaptionv1connect.WorkerServiceName+"/") {
			right = testNodeToken
		}
		for _, token := range []string{"", testServiceToken, testNodeToken} {
			// Without the door's token the headers are refused before any
			// body is read; with it, the body's limit refuses it.
			wantStatus, wantCode := http.StatusTooManyRequests, "resource_exhausted"
			if token != right {
				wantStatus, wantCode = http.StatusUnauthorized, "unauthenticated"
			}
			status, code := postConnect(t, a.URL, p, token, bomb, true)
			require.Equal(t, wantStatus, status, "%s with token %q: a gzip bomb", p, token)
			require.Equal(t, wantCode, code, p)
			if p == ytcaptionv1connect.JobServiceUploadJobProcedure {
				continue // 3 MiB is a small upload
			}
			status, code = postConnect(t, a.URL, p, token, plain, false)
			require.Equal(t, wantStatus, status, "%s with token %q: 3 MiB plain", p, token)
			require.Equal(t, wantCode, code, p)
		}
	}

	// UploadJob's own limit: a 3 MiB file is taken, one past the limit is not.
	file := make([]byte, 3<<20)
	_, _ = rand.Read(file)
	resp, err := a.jobs.UploadJob(context.Background(), connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "talk.ogg", Data: file}))
	require.NoError(t, err)
	require.Equal(t, "upload:talk.ogg", resp.Msg.GetJob().GetUrl())
	_, err = a.jobs.UploadJob(context.Background(), connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "big.ogg", Data: make([]byte, MaxUploadMessageBytes)}))
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err))
	// And the small limit still holds for the service's other methods.
	_, err = a.jobs.CreateJob(context.Background(), connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "https://example.com/a.ogg", Prompt: strings.Repeat("x", 2<<20)}))
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err))
}

// TestUploadOverQuotaStoresNothing: an upload the quota refuses is refused
// before its file is stored, so the blob store holds nothing under uploads/.
func TestUploadOverQuotaStoresNothing(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	require.NoError(t, a.store.SetPlan(ctx, store.Plan{Name: "one-at-a-time", MaxConcurrent: 1}))
	bob, err := a.store.CreateUser(ctx, "bob", store.RoleUser, "one-at-a-time")
	require.NoError(t, err)
	_, err = a.store.CreateJob(ctx, store.NewJob{UserID: bob.ID, URL: "https://example.com/a.ogg", CanonicalURL: "https://example.com/a.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err)

	file := make([]byte, 64<<10)
	_, _ = rand.Read(file)
	_, err = a.jobsFor(bob.ID).UploadJob(ctx, connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: file}))
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err), "the edge answers this 403")
	require.Equal(t, job.CodeQuotaExceeded, detailOf(t, err))
	keys, err := a.blobs.Keys(ctx)
	require.NoError(t, err)
	for _, k := range keys {
		require.False(t, strings.HasPrefix(k, "uploads/"), "a refused upload left %s", k)
	}
}

// TestRefusedUploadIsDeletedUnlessAJobHasTheSameFile covers an upload the
// quota refused only at the job's creation (spent by a concurrent one): its
// blob goes, unless a job holds the same content — uploads share a blob.
func TestRefusedUploadIsDeletedUnlessAJobHasTheSameFile(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	s := a.admin.jobs
	put := func(data []byte) string {
		k := blob.ContentKey("uploads", data, "")
		require.NoError(t, a.blobs.Put(ctx, k, bytes.NewReader(data), int64(len(data)), ""))
		return k
	}
	stored := func(k string) bool {
		_, ok, err := a.blobs.Stored(ctx, k)
		require.NoError(t, err)
		return ok
	}

	alone := []byte("nobody else uploaded this")
	k := put(alone)
	s.forgetUpload(ctx, k, alone)
	require.False(t, stored(k), "a refused upload nobody shares is deleted")

	shared := []byte("another job has this file")
	k = put(shared)
	_, err := a.store.CreateJob(ctx, store.NewJob{UserID: a.user.ID, URL: "upload:x", CanonicalURL: k, SourceKind: job.SourceUpload})
	require.NoError(t, err)
	s.forgetUpload(ctx, k, shared)
	require.True(t, stored(k), "the other job's file stays")

	// A concurrent refusal deleted the blob between this job's Put and its
	// creation: the job puts it back.
	require.NoError(t, a.blobs.Delete(ctx, k))
	s.keepUpload(ctx, k, shared)
	require.True(t, stored(k))
}

// TestEngineAndModelAreNamesNotPaths: {"engine":"whispercpp","model":"/etc/passwd"}
// and every other path-like name is refused at creation with 400.
func TestEngineAndModelAreNamesNotPaths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		engine, model string
		ok            bool
	}{
		{"", "", true},
		{"whispercpp", "ggml-base.en.bin", true},
		{"openai", "Systran/faster-whisper-large-v3", true},
		{"openai", "whisper-1", true},
		{"my-engine", "llama:7b", true},
		{"whispercpp", "/etc/passwd", false},
		{"whispercpp", "../../etc/passwd", false},
		{"whispercpp", "models/../../etc/passwd", false},
		{"whispercpp", "a..b", false},
		{"whispercpp", `..\secret`, false},
		{"whispercpp", `C:\models\x.bin`, false},
		{"whispercpp", "a//b", false},
		{"whispercpp", "dir/", false},
		{"whispercpp", ".hidden", false},
		{"whispercpp", "-rf", false},
		{"whispercpp", "base en", false},
		{"whispercpp", "base\x00.bin", false},
		{"whispercpp", strings.Repeat("a", 101), false},
		{"/usr/bin/whisper", "", false},
		{"open/ai", "", false},
		{"..", "", false},
	} {
		err := checkOptions("auto", tc.engine, tc.model, "transcribe", "")
		if tc.ok {
			require.NoError(t, err, "%+v", tc)
		} else {
			require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err), "%+v", tc)
		}
	}

	a := newTestAPI(t, nil)
	_, err := a.jobs.CreateJob(context.Background(), connect.NewRequest(&ytcaptionv1.CreateJobRequest{
		Url: "https://example.com/a.ogg", Engine: "whispercpp", Model: "/etc/passwd"}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "400 at the edge")
	require.Equal(t, job.CodeInvalidArgument, detailOf(t, err))
	_, err = a.jobs.UploadJob(context.Background(), connect.NewRequest(&ytcaptionv1.UploadJobRequest{
		Filename: "a.wav", Data: []byte("RIFF"), Engine: "whispercpp", Model: "/etc/passwd"}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
}

// TestJobsNameOnlyWhatGPUNodesOffer: an engine, model, language, task or
// prompt that no engine of a gpu-node seen in the last ten minutes
// advertises is refused with unsupported_option, and the error names what
// is on offer. Core knows no engine: only what the nodes say counts.
func TestJobsNameOnlyWhatGPUNodesOffer(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, nil)
	ctx := context.Background()
	createJob := func(r *ytcaptionv1.CreateJobRequest) error {
		r.Url = "https://example.com/a.ogg"
		_, err := a.jobs.CreateJob(ctx, connect.NewRequest(r))
		return err
	}
	create := func(engine, model string) error {
		return createJob(&ytcaptionv1.CreateJobRequest{Engine: engine, Model: model})
	}
	touch := func(node string, caps ...engines.Caps) {
		_, err := a.store.TouchAgent(ctx, node, caps, "test", store.Slots{})
		require.NoError(t, err)
	}

	err := create("whispercpp", "")
	require.Equal(t, job.CodeUnsupported, detailOf(t, err), "no node has called in")
	require.Contains(t, err.Error(), "none")
	require.NoError(t, create("", ""), "any engine, any model: the queue waits for a node")
	require.NoError(t, createJob(&ytcaptionv1.CreateJobRequest{Language: "de", Task: "translate", Prompt: "Elinor"}),
		"no node has said what is on offer: the queue waits for one")

	touch("gpu-1", engines.Caps{Name: "whispercpp", Models: []string{"ggml-base.en.bin"}, Translate: true, Prompt: true})
	// An operator's server limited to two languages, without prompts.
	touch("gpu-2", engines.Caps{Name: "openai", Models: []string{"Systran/faster-whisper-large-v3"}, Languages: []string{"en", "fr"}, Translate: true})
	require.NoError(t, create("whispercpp", "ggml-base.en.bin"))
	require.NoError(t, create("", "Systran/faster-whisper-large-v3"))
	require.NoError(t, create("openai", ""))

	err = create("whispercpp", "ggml-large-v3.bin")
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "400 at the edge")
	require.Equal(t, job.CodeUnsupported, detailOf(t, err))
	require.Contains(t, err.Error(), `"ggml-base.en.bin"`, "names the models on offer")
	require.NotContains(t, err.Error(), "Systran", "only the named engine's models")
	err = create("whispercpp", "Systran/faster-whisper-large-v3")
	require.Equal(t, job.CodeUnsupported, detailOf(t, err), "a model of another engine's node")
	err = create("sphinx", "")
	require.Equal(t, job.CodeUnsupported, detailOf(t, err))
	require.Contains(t, err.Error(), `"openai", "whispercpp"`)
	_, err = a.jobs.UploadJob(ctx, connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: []byte("RIFF"), Model: "whisper-1"}))
	require.Equal(t, job.CodeUnsupported, detailOf(t, err))

	// Languages, translation and prompts, as the nodes advertised them.
	touch("gpu-3", engines.Caps{Name: "sphinx", Models: []string{"en-us"}, Languages: []string{"en"}})
	require.NoError(t, createJob(&ytcaptionv1.CreateJobRequest{Language: "de", Task: "translate", Prompt: "Elinor"}), "whispercpp can")
	require.NoError(t, createJob(&ytcaptionv1.CreateJobRequest{Engine: "sphinx", Language: "en"}))
	for _, tc := range []struct {
		req  *ytcaptionv1.CreateJobRequest
		want string
	}{
		{&ytcaptionv1.CreateJobRequest{Engine: "sphinx", Language: "de"}, `languages on offer: "en"`},
		{&ytcaptionv1.CreateJobRequest{Engine: "sphinx", Task: "translate"}, `engines on offer that can: "openai", "whispercpp"`},
		{&ytcaptionv1.CreateJobRequest{Engine: "sphinx", Prompt: "Elinor"}, `engines on offer that do: "whispercpp"`},
		{&ytcaptionv1.CreateJobRequest{Model: "Systran/faster-whisper-large-v3", Language: "de"}, `languages on offer: "en", "fr"`},
		{&ytcaptionv1.CreateJobRequest{Engine: "openai", Prompt: "Elinor"}, `engines on offer that do: "whispercpp"`},
	} {
		err := createJob(tc.req)
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%v", tc.req)
		require.Equal(t, job.CodeUnsupported, detailOf(t, err), "%v", tc.req)
		require.Contains(t, err.Error(), tc.want)
	}
	_, err = a.jobs.UploadJob(ctx, connect.NewRequest(&ytcaptionv1.UploadJobRequest{Filename: "a.wav", Data: []byte("RIFF"), Engine: "sphinx", Task: "translate"}))
	require.Equal(t, job.CodeUnsupported, detailOf(t, err), "uploads are checked alike")

	// A node silent for longer than the window is gone, and what only it did with it.
	_, err = a.db.Exec(ctx, `UPDATE agents SET last_seen = now() - $1::bigint * interval '1 millisecond' WHERE node_id = 'gpu-1'`,
		(offerWindow + time.Minute).Milliseconds())
	require.NoError(t, err)
	require.Equal(t, job.CodeUnsupported, detailOf(t, create("whispercpp", "ggml-base.en.bin")))
	err = createJob(&ytcaptionv1.CreateJobRequest{Language: "de", Task: "translate"})
	require.Equal(t, job.CodeUnsupported, detailOf(t, err), "openai translates English and French only")
	require.Contains(t, err.Error(), `languages on offer: "en", "fr"`)
	err = createJob(&ytcaptionv1.CreateJobRequest{Prompt: "Elinor"})
	require.Contains(t, err.Error(), "engines on offer that do: none")
}

// TestWatchJobWakesOnEveryChange: with the poll fallback at an hour, a
// watcher still sees each change at once — claimed, segments pushed,
// progress, finished — because each wakes it.
func TestWatchJobWakesOnEveryChange(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t, func(c *Config) { c.WatchPoll = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j := readyJob(ctx, t, a, "https://example.com/a.ogg")
	next, stop := watch(ctx, t, a, j.ID)
	defer stop()
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_READY, next("first look").GetJob().GetStatus())

	acq, err := a.worker.AcquireJob(ctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "gpu-1", Engines: []string{"sphinx"}}))
	require.NoError(t, err)
	asg := acq.Msg.GetAssignment()
	require.Equal(t, j.ID, asg.GetJobId())
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_TRANSCRIBING, next("claimed").GetJob().GetStatus())

	_, err = a.worker.PushSegments(ctx, connect.NewRequest(&ytcaptionv1.PushSegmentsRequest{JobId: j.ID, Epoch: asg.GetEpoch(),
		Segments: []*ytcaptionv1.Segment{{Seq: 0, StartMs: 0, EndMs: 900, Text: "hello"}}, Progress: 0.2}))
	require.NoError(t, err)
	m := next("segment pushed")
	require.Len(t, m.GetSegments(), 1)
	require.Equal(t, "hello", m.GetSegments()[0].GetText())

	_, err = a.worker.Heartbeat(ctx, connect.NewRequest(&ytcaptionv1.HeartbeatRequest{JobId: j.ID, Epoch: asg.GetEpoch(), Progress: 0.6, NodeId: "gpu-1"}))
	require.NoError(t, err)
	require.InDelta(t, 0.6, next("progress").GetJob().GetProgress(), 1e-9)

	_, err = a.worker.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: j.ID, Epoch: asg.GetEpoch(), DetectedLanguage: "en", SegmentCount: 1}))
	require.NoError(t, err)
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, next("finished").GetJob().GetStatus())
	require.Nil(t, next(""), "the stream ends at the terminal state")
}

// TestWatchJobWakesAcrossReplicas: a watcher on one core replica sees what
// a gpu-node does through another — claimed, a segment pushed, finished —
// at once, by Postgres NOTIFY, with the poll fallback at an hour.
func TestWatchJobWakesAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pools := make([]*pgxpool.Pool, 2)
	for i := range pools {
		p, err := pgxpool.New(ctx, url)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		pools[i] = p
	}
	_, err := migrations.Migrate(ctx, sqldb.FromPool(pools[0]))
	require.NoError(t, err)
	blobs, err := blob.OpenDir(t.TempDir(), "")
	require.NoError(t, err)
	hourly := func(c *Config) { c.WatchPoll = time.Hour }
	watching := serveTestAPI(t, sqldb.FromPool(pools[0]), blobs, hourly)
	working := serveTestAPI(t, sqldb.FromPool(pools[1]), blobs, hourly)

	// LISTEN starts asynchronously: announce until the watching replica hears.
	require.Eventually(t, func() bool {
		heard, release := watching.bus.Changed.Wait("probe")
		defer release()
		working.bus.Announce(ctx, store.Change{JobID: "probe", From: job.StatusReady, To: job.StatusReady})
		select {
		case <-heard:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}, 10*time.Second, 10*time.Millisecond, "the replicas' buses never met")

	j := readyJob(ctx, t, watching, "https://example.com/b.ogg")
	next, stop := watch(ctx, t, watching, j.ID)
	defer stop()
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_READY, next("first look").GetJob().GetStatus())
	acq, err := working.worker.AcquireJob(ctx, connect.NewRequest(&ytcaptionv1.AcquireJobRequest{NodeId: "gpu-1", Engines: []string{"sphinx"}}))
	require.NoError(t, err)
	asg := acq.Msg.GetAssignment()
	require.Equal(t, j.ID, asg.GetJobId())
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_TRANSCRIBING, next("claimed on the other replica").GetJob().GetStatus())
	_, err = working.worker.PushSegments(ctx, connect.NewRequest(&ytcaptionv1.PushSegmentsRequest{JobId: j.ID, Epoch: asg.GetEpoch(),
		Segments: []*ytcaptionv1.Segment{{Seq: 0, StartMs: 0, EndMs: 900, Text: "across"}}, Progress: 0.5}))
	require.NoError(t, err)
	m := next("segment pushed to the other replica")
	require.Len(t, m.GetSegments(), 1)
	require.Equal(t, "across", m.GetSegments()[0].GetText())
	_, err = working.worker.CompleteJob(ctx, connect.NewRequest(&ytcaptionv1.CompleteJobRequest{JobId: j.ID, Epoch: asg.GetEpoch(), SegmentCount: 1}))
	require.NoError(t, err)
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, next("finished on the other replica").GetJob().GetStatus())
}

// readyJob is a job of a's user, downloaded and waiting for a node.
func readyJob(ctx context.Context, t *testing.T, a *testAPI, url string) job.Job {
	t.Helper()
	j, err := a.store.CreateJob(ctx, store.NewJob{UserID: a.user.ID, URL: url, CanonicalURL: url, SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	c, ok, err := a.store.ClaimQueued(ctx, "core", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, a.store.MarkReady(ctx, c.ID, c.Epoch, store.Media{Title: url, Duration: 5 * time.Second, AudioKey: "audio/" + c.ID + ".wav"}))
	return j
}

// watch opens WatchJob on a and returns next, which waits up to 10 s for
// the stream's next message (nil once it has ended; the poll fallback in
// these tests is an hour, so only a wake-up delivers in time), and stop.
func watch(ctx context.Context, t *testing.T, a *testAPI, id string) (next func(what string) *ytcaptionv1.WatchJobResponse, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	stream, err := a.jobs.WatchJob(ctx, connect.NewRequest(&ytcaptionv1.WatchJobRequest{Id: id}))
	require.NoError(t, err)
	msgs := make(chan *ytcaptionv1.WatchJobResponse)
	go func() {
		defer close(msgs)
		for stream.Receive() {
			msgs <- stream.Msg()
		}
	}()
	return func(what string) *ytcaptionv1.WatchJobResponse {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no message within 10 s (the poll fallback is an hour)", what)
			return nil
		}
	}, cancel
}
