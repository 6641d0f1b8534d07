package api

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

const secretCookies = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tthe-secret-session\n"

// TestCookieFilesThroughTheAdminAPI: over the wire, as the edge calls for an
// admin, junk and oversized files are refused with their codes, a good one
// is stored, and no reply ever carries its content; the pool of the replica
// that answers re-reads the files at once and shows their rests.
func TestCookieFilesThroughTheAdminAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newTestAPI(t, nil)
	admin := a.rootAdmin(t)
	pool, err := outbound.New(ctx, slog.New(slog.DiscardHandler), outbound.Config{Proxies: []string{"http://user:pw@proxy.example:3128"}}, a.store, nil)
	require.NoError(t, err)
	a.admin.outbound = pool

	_, err = ytcaptionv1connect.NewAdminServiceClient(asUser(testServiceToken, a.user.ID), a.URL).
		ListCookieFiles(ctx, connect.NewRequest(&ytcaptionv1.ListCookieFilesRequest{}))
	require.Equal(t, job.CodeForbidden, detailOf(t, err), "admins only")

	add := func(name, content string) (*ytcaptionv1.CookieFile, error) {
		resp, err := admin.AddCookieFile(ctx, connect.NewRequest(&ytcaptionv1.AddCookieFileRequest{Name: name, Content: content}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetCookieFile(), nil
	}
	for _, junk := range []string{"", "hello", `[{"name":"SID","value":"the-secret-session"}]`, strings.ReplaceAll(secretCookies, "\t", " ")} {
		_, err := add("junk", junk)
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "%q", junk)
		require.Equal(t, errcode.InvalidArgument, detailOf(t, err), "%q", junk)
		require.NotContains(t, err.Error(), "the-secret-session", "a refusal never quotes the file")
	}
	_, err = add("huge", secretCookies+strings.Repeat("# padding padding padding padding\n", 20000))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
	require.Equal(t, errcode.RequestTooLarge, detailOf(t, err), "over 512 KiB: request_too_large (413 at the edge)")
	_, err = add("", secretCookies)
	require.Equal(t, errcode.InvalidArgument, detailOf(t, err), "a name is needed")

	c, err := add("account-1", secretCookies)
	require.NoError(t, err)
	require.Equal(t, "account-1", c.GetName())
	require.True(t, c.GetEnabled())
	require.EqualValues(t, len(secretCookies), c.GetSizeBytes())
	_, err = add("account-1", secretCookies)
	require.Equal(t, errcode.Conflict, detailOf(t, err))

	l, err := pool.Pick(ctx)
	require.NoError(t, err)
	require.Equal(t, "account-1", l.CookiesName, "the answering replica's pool uses the new file at once")
	require.NoError(t, pool.Report(ctx, l, &job.Error{Code: job.CodeBotCheck}))

	list, err := admin.ListCookieFiles(ctx, connect.NewRequest(&ytcaptionv1.ListCookieFilesRequest{}))
	require.NoError(t, err)
	require.Len(t, list.Msg.GetCookieFiles(), 1)
	got := list.Msg.GetCookieFiles()[0]
	require.Equal(t, job.CodeBotCheck, got.GetLastFailureCode())
	require.NotNil(t, got.GetLastFailureAt())
	require.NotNil(t, got.GetRestingUntil(), "resting on this replica")

	ob, err := admin.ListOutbound(ctx, connect.NewRequest(&ytcaptionv1.ListOutboundRequest{}))
	require.NoError(t, err)
	require.Len(t, ob.Msg.GetEntries(), 2)
	require.Equal(t, "proxy.example:3128", ob.Msg.GetEntries()[0].GetName(), "host:port, no credentials")
	require.True(t, ob.Msg.GetEntries()[0].GetResting())
	require.Equal(t, c.GetId(), ob.Msg.GetEntries()[1].GetCookieFileId())

	upd, err := admin.UpdateCookieFile(ctx, connect.NewRequest(&ytcaptionv1.UpdateCookieFileRequest{CookieFileId: c.GetId(), Enabled: proto.Bool(false)}))
	require.NoError(t, err)
	require.False(t, upd.Msg.GetCookieFile().GetEnabled())
	_, err = admin.UpdateCookieFile(ctx, connect.NewRequest(&ytcaptionv1.UpdateCookieFileRequest{CookieFileId: c.GetId()}))
	require.Equal(t, errcode.InvalidArgument, detailOf(t, err))
	ob, err = admin.ListOutbound(ctx, connect.NewRequest(&ytcaptionv1.ListOutboundRequest{}))
	require.NoError(t, err)
	require.Len(t, ob.Msg.GetEntries(), 1, "a disabled file leaves the pool")

	for _, m := range []proto.Message{list.Msg, ob.Msg, upd.Msg} {
		b, err := protojson.Marshal(m)
		require.NoError(t, err)
		require.NotContains(t, string(b), "the-secret-session", "no reply carries the content")
		require.NotContains(t, string(b), "pw@", "nor a proxy's password")
	}

	_, err = admin.DeleteCookieFile(ctx, connect.NewRequest(&ytcaptionv1.DeleteCookieFileRequest{CookieFileId: c.GetId()}))
	require.NoError(t, err)
	_, err = admin.DeleteCookieFile(ctx, connect.NewRequest(&ytcaptionv1.DeleteCookieFileRequest{CookieFileId: c.GetId()}))
	require.Equal(t, errcode.NotFound, detailOf(t, err))

	audit, err := admin.ListAudit(ctx, connect.NewRequest(&ytcaptionv1.ListAuditRequest{}))
	require.NoError(t, err)
	b, err := protojson.Marshal(audit.Msg)
	require.NoError(t, err)
	require.Contains(t, string(b), "add_cookie_file")
	require.Contains(t, string(b), "admin:root")
	require.NotContains(t, string(b), "the-secret-session")
}
