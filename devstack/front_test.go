package devstack

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

func withKey[T any](key string, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	if key != "" {
		r.Header().Set("Authorization", "Bearer "+key)
	}
	return r
}

// h2c is an HTTP/2 client without TLS, as gRPC inside a cluster uses.
func h2c() *http.Client {
	t := &http.Transport{Protocols: new(http.Protocols)}
	t.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: t}
}

// TestConnectFrontDoor drives the edge's Connect/gRPC front door with the
// generated client over the Connect protocol and over gRPC: the same auth,
// per-key limits (shared with REST) and Idempotency-Key (replayable across
// transports), and WatchJob streaming to the terminal state.
func TestConnectFrontDoor(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.CreateRate = 3 })
	media, _ := mediaServer(t)
	ctx := context.Background()
	jobs := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, s.ConnectURL)

	_, err := jobs.ListJobs(ctx, withKey("", &ytcaptionv1.ListJobsRequest{}))
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
	require.Equal(t, "unauthorized", errcode.OfConnect(err))

	create := &ytcaptionv1.CreateJobRequest{Url: media + "/notmedia.txt", IdempotencyKey: "front-1"}
	first, err := jobs.CreateJob(ctx, withKey(s.APIKey, create))
	require.NoError(t, err)
	require.False(t, first.Msg.GetReplayed())
	require.NotEmpty(t, first.Header().Get("RateLimit"), "limits are described over Connect too")
	again, err := jobs.CreateJob(ctx, withKey(s.APIKey, create))
	require.NoError(t, err)
	require.True(t, again.Msg.GetReplayed())
	require.Equal(t, first.Msg.GetJob().GetId(), again.Msg.GetJob().GetId())

	// The key is the user's, whatever the transport: REST replays it.
	r := postJob(t, s, "front-1", `{"url":"`+media+`/notmedia.txt"}`)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	require.Equal(t, "true", r.header.Get("Idempotent-Replayed"))
	require.Equal(t, first.Msg.GetJob().GetId(), jobID(t, r.body))

	// Three creations spent the key's burst of 3, over both transports.
	_, err = jobs.CreateJob(ctx, withKey(s.APIKey, &ytcaptionv1.CreateJobRequest{Url: media + "/notmedia.txt"}))
	require.Equal(t, connect.CodeResourceExhausted, connect.CodeOf(err))
	require.Equal(t, "rate_limited", errcode.OfConnect(err))
	var ce *connect.Error
	require.True(t, errors.As(err, &ce))
	require.NotEmpty(t, ce.Meta().Get("Retry-After"))

	// gRPC: read the job and watch it to its end.
	grpc := ytcaptionv1connect.NewJobServiceClient(h2c(), s.ConnectURL, connect.WithGRPC())
	got, err := grpc.GetJob(ctx, withKey(s.APIKey, &ytcaptionv1.GetJobRequest{Id: first.Msg.GetJob().GetId()}))
	require.NoError(t, err)
	require.Equal(t, first.Msg.GetJob().GetId(), got.Msg.GetJob().GetId())
	_, err = grpc.GetJob(ctx, withKey(s.APIKey, &ytcaptionv1.GetJobRequest{Id: "00000000-0000-4000-8000-000000000000"}))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err))

	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stream, err := grpc.WatchJob(wctx, withKey(s.APIKey, &ytcaptionv1.WatchJobRequest{Id: first.Msg.GetJob().GetId()}))
	require.NoError(t, err)
	var last *ytcaptionv1.Job
	for stream.Receive() {
		last = stream.Msg().GetJob()
	}
	require.NoError(t, stream.Err())
	require.NotNil(t, last)
	require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_FAILED, last.GetStatus(), "the stream ends at the terminal state")
	require.Equal(t, "not_media", last.GetError().GetCode())
}
