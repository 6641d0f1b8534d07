package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
)

const testCookies = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tsecret-session\n"

// TestCookieFilesRoundTripWithoutTheirContent: a cookie file is stored with
// its content, listed without it, enabled and disabled, records outcomes,
// and is deleted — each change audited by name, never by content.
func TestCookieFilesRoundTripWithoutTheirContent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, _ := newStore(t)
		ctx := context.Background()

		a, err := s.AddCookieFile(ctx, "admin:root", " account-a ", []byte(testCookies))
		require.NoError(t, err)
		require.Equal(t, "account-a", a.Name, "the name is trimmed")
		require.True(t, a.Enabled, "a new file is enabled")
		require.Equal(t, len(testCookies), a.Size)
		require.Nil(t, a.LastSuccessAt)
		require.Nil(t, a.LastFailureAt)
		_, err = s.AddCookieFile(ctx, "admin:root", "account-b", []byte(testCookies))
		require.NoError(t, err)

		_, err = s.AddCookieFile(ctx, "admin:root", "account-a", []byte(testCookies))
		require.Equal(t, job.CodeConflict, job.CodeOf(err), "names are unique")
		_, err = s.AddCookieFile(ctx, "admin:root", "", []byte(testCookies))
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
		_, err = s.AddCookieFile(ctx, "admin:root", "bad\nname", []byte(testCookies))
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
		_, err = s.AddCookieFile(ctx, "admin:root", "empty", nil)
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))
		_, err = s.AddCookieFile(ctx, "admin:root", "huge", []byte(strings.Repeat("x", store.MaxCookieFileBytes+1)))
		require.Equal(t, errcode.RequestTooLarge, job.CodeOf(err))

		got, err := s.CookieFileContent(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, testCookies, string(got))

		off, err := s.SetCookieFileEnabled(ctx, "admin:root", a.ID, false)
		require.NoError(t, err)
		require.False(t, off.Enabled)

		at := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
		require.NoError(t, s.RecordCookieOutcome(ctx, a.ID, at, ""))
		require.NoError(t, s.RecordCookieOutcome(ctx, a.ID, at.Add(time.Minute), job.CodeBotCheck))
		list, err := s.ListCookieFiles(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "account-a", list[0].Name, "by name")
		require.False(t, list[0].Enabled)
		require.NotNil(t, list[0].LastSuccessAt)
		require.True(t, at.Equal(*list[0].LastSuccessAt))
		require.NotNil(t, list[0].LastFailureAt)
		require.True(t, at.Add(time.Minute).Equal(*list[0].LastFailureAt))
		require.Equal(t, job.CodeBotCheck, list[0].LastFailureCode)
		require.True(t, list[1].Enabled)

		require.NoError(t, s.DeleteCookieFile(ctx, "admin:root", a.ID))
		require.Equal(t, job.CodeNotFound, job.CodeOf(s.DeleteCookieFile(ctx, "admin:root", a.ID)))
		_, err = s.CookieFileContent(ctx, a.ID)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.SetCookieFileEnabled(ctx, "admin:root", a.ID, true)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		_, err = s.SetCookieFileEnabled(ctx, "admin:root", "not-a-uuid", true)
		require.Equal(t, job.CodeNotFound, job.CodeOf(err))
		require.NoError(t, s.RecordCookieOutcome(ctx, a.ID, at, ""), "a deleted file has nothing to record on")

		entries, err := s.ListAudit(ctx, time.Time{}, 100)
		require.NoError(t, err)
		var actions []string
		for _, e := range entries {
			require.NotContains(t, string(e.Detail), "secret-session", "the audit log never holds a cookie")
			if e.Target == "account-a" {
				actions = append(actions, e.Action)
			}
		}
		require.ElementsMatch(t, []string{"add_cookie_file", "disable_cookie_file", "delete_cookie_file"}, actions)
	})
}
