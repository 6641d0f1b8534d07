package api

import (
	"context"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// CreateJobs answers each gathered creation as CreateJob answers it alone:
// the job for its own user, or CreateJob's error (code, message and
// machine-readable code), in the order sent.
func TestCreateJobsDecidesEachCreationAsCreateJobWould(t *testing.T) {
	a := newTestAPI(t, nil)
	ctx := context.Background()
	bob, err := a.store.EnsureUser(ctx, "bob", store.RoleUser)
	require.NoError(t, err)
	edge := ytcaptionv1connect.NewEdgeServiceClient(asUser(testServiceToken, ""), a.URL)
	bad := &ytcaptionv1.CreateJobRequest{Url: "https://example.com/c.ogg", Language: "not a language"}
	resp, err := edge.CreateJobs(ctx, connect.NewRequest(&ytcaptionv1.CreateJobsRequest{Creations: []*ytcaptionv1.JobCreation{
		{UserId: a.user.ID, Request: &ytcaptionv1.CreateJobRequest{Url: "https://example.com/a.ogg"}},
		{UserId: bob.ID, Request: bad},
		{UserId: "not-a-user", Request: &ytcaptionv1.CreateJobRequest{Url: "https://example.com/a.ogg"}},
		{UserId: bob.ID, Request: &ytcaptionv1.CreateJobRequest{Url: "https://example.com/b.ogg"}},
	}}))
	require.NoError(t, err)
	rs := resp.Msg.GetResults()
	require.Len(t, rs, 4)

	// Each job is its own user's, and nobody else's.
	for i, owner := range map[int]string{0: a.user.ID, 3: bob.ID} {
		j := rs[i].GetResponse().GetJob()
		require.NotEmpty(t, j.GetId(), "creation %d: %v", i, rs[i].GetError())
		require.Equal(t, ytcaptionv1.JobStatus_JOB_STATUS_QUEUED, j.GetStatus())
		_, err := a.jobsFor(owner).GetJob(ctx, connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: j.GetId()}))
		require.NoError(t, err, "creation %d is its user's", i)
		other := map[string]string{a.user.ID: bob.ID, bob.ID: a.user.ID}[owner]
		_, err = a.jobsFor(other).GetJob(ctx, connect.NewRequest(&ytcaptionv1.GetJobRequest{Id: j.GetId()}))
		require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "creation %d is not the other user's", i)
	}
	require.Equal(t, "https://example.com/b.ogg", rs[3].GetResponse().GetJob().GetUrl(), "answers keep the order they were sent in")

	// The refused creation's error is CreateJob's for the same request.
	_, alone := a.jobsFor(bob.ID).CreateJob(ctx, connect.NewRequest(bad))
	var ce *connect.Error
	require.ErrorAs(t, alone, &ce)
	require.Equal(t, &ytcaptionv1.CreationError{ConnectCode: uint32(ce.Code()), Message: ce.Message(), Code: detail(t, alone)}, rs[1].GetError())
	require.Equal(t, job.CodeInvalidArgument, rs[1].GetError().GetCode())
	require.Nil(t, rs[1].GetResponse())

	// A malformed user is refused as the user header is.
	require.Equal(t, uint32(connect.CodeUnauthenticated), rs[2].GetError().GetConnectCode())
	require.Equal(t, job.CodeUnauthorized, rs[2].GetError().GetCode())
}

func TestCreateJobsTakesAtMost64Creations(t *testing.T) {
	a := newTestAPI(t, nil)
	ctx := context.Background()
	edge := ytcaptionv1connect.NewEdgeServiceClient(asUser(testServiceToken, ""), a.URL)
	many := make([]*ytcaptionv1.JobCreation, MaxCreationsPerCall+1)
	for i := range many {
		many[i] = &ytcaptionv1.JobCreation{UserId: a.user.ID, Request: &ytcaptionv1.CreateJobRequest{Url: fmt.Sprintf("https://example.com/%d.ogg", i)}}
	}
	_, err := edge.CreateJobs(ctx, connect.NewRequest(&ytcaptionv1.CreateJobsRequest{Creations: many}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Equal(t, job.CodeInvalidArgument, detailOf(t, err))
	jobs, err := a.jobs.ListJobs(ctx, connect.NewRequest(&ytcaptionv1.ListJobsRequest{}))
	require.NoError(t, err)
	require.Empty(t, jobs.Msg.GetJobs(), "a refused call creates nothing")

	resp, err := edge.CreateJobs(ctx, connect.NewRequest(&ytcaptionv1.CreateJobsRequest{Creations: many[:MaxCreationsPerCall]}))
	require.NoError(t, err)
	for i, r := range resp.Msg.GetResults() {
		require.NotEmpty(t, r.GetResponse().GetJob().GetId(), "creation %d: %v", i, r.GetError())
	}

	// Only the edge's service token reaches it.
	stranger := ytcaptionv1connect.NewEdgeServiceClient(asUser("not-the-token", ""), a.URL)
	_, err = stranger.CreateJobs(ctx, connect.NewRequest(&ytcaptionv1.CreateJobsRequest{Creations: many[:1]}))
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
}
