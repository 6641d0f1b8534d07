package api

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// TestListUsersGivesEachUserTheirOwnUsage: the users page reads every
// user's usage at once, and each user gets the quota GetUser shows them.
func TestListUsersGivesEachUserTheirOwnUsage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newTestAPI(t, nil)
	admin := a.rootAdmin(t)
	bob, err := a.store.CreateUser(ctx, "bob", store.RoleUser, store.DefaultPlan)
	require.NoError(t, err)
	_, err = a.store.UpdateAccount(ctx, "test", bob.ID, store.AccountPatch{MonthlyMinutes: new(7)})
	require.NoError(t, err)
	for range 2 {
		_, err := a.store.CreateJob(ctx, store.NewJob{UserID: a.user.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP})
		require.NoError(t, err)
	}

	resp, err := admin.ListUsers(ctx, connect.NewRequest(&ytcaptionv1.ListUsersRequest{}))
	require.NoError(t, err)
	quotas := map[string]*ytcaptionv1.Quota{}
	for _, u := range resp.Msg.GetUsers() {
		quotas[u.GetName()] = u.GetQuota()
		one, err := admin.GetUser(ctx, connect.NewRequest(&ytcaptionv1.GetUserRequest{UserId: u.GetId()}))
		require.NoError(t, err)
		require.True(t, proto.Equal(one.Msg.GetUser().GetQuota(), u.GetQuota()), "%s: %v, GetUser %v", u.GetName(), u.GetQuota(), one.Msg.GetUser().GetQuota())
	}
	require.Len(t, quotas, 3)
	require.EqualValues(t, 2, quotas["alice"].GetActiveJobs())
	require.EqualValues(t, 0, quotas["alice"].GetMonthlyMinutes())
	require.EqualValues(t, 0, quotas["bob"].GetActiveJobs())
	require.EqualValues(t, 7, quotas["bob"].GetMonthlyMinutes())
	require.EqualValues(t, 0, quotas["root"].GetActiveJobs())
}
