package main

import (
	"bytes"
	"context"
	"flag"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/pgtest"
)

func TestAdminCommandsMakeUsersKeysAndPlans(t *testing.T) {
	url := pgtest.URL(t)
	admin := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		env := func(k string) string {
			switch k {
			case "YTCAPTION_CORE_POSTGRES_URL":
				return url
			case "YTCAPTION_CORE_READ_RATE": // serve's deployment default must not leak into a plan
				return "99"
			}
			return ""
		}
		err := run(context.Background(), append([]string{"admin"}, args...), env, &out, &errOut)
		return out.String(), errOut.String(), err
	}

	out, _, err := admin("set-plan", "--name", "pro", "--create-rate", "50", "--read-burst", "400")
	require.NoError(t, err)
	require.Equal(t, "plan pro: create 50/s burst default, read default/s burst 400, unlimited minutes a month, unlimited jobs at once, default streams per key, unlimited translation characters a month\n", out)
	out, _, err = admin("set-plan", "--name", "pro", "--create-rate", "50", "--read-burst", "400", "--monthly-minutes", "600", "--max-concurrent", "3",
		"--max-streams", "4", "--monthly-translation-chars", "50000")
	require.NoError(t, err)
	require.Equal(t, "plan pro: create 50/s burst default, read default/s burst 400, 600 minutes a month, 3 jobs at once, 4 streams per key, 50000 translation characters a month\n", out)
	out, _, err = admin("create-user", "--name", "alice", "--plan", "pro")
	require.NoError(t, err)
	require.Regexp(t, `^created user alice \([0-9a-f-]{36}, user, plan pro\)\n$`, out)
	out, _, err = admin("create-key", "--user", "alice")
	require.NoError(t, err)
	require.Regexp(t, `^ytc_[0-9A-Za-z]{32}\n$`, out)
	out, _, err = admin("assign-plan", "--user", "alice", "--plan", "default")
	require.NoError(t, err)
	require.Equal(t, "user alice is on plan default\n", out)

	_, _, err = admin("create-user", "--name", "alice")
	require.ErrorContains(t, err, "exists already")
	out, _, err = admin("delete-user", "--name", "alice")
	require.NoError(t, err)
	require.Equal(t, "deleted user alice and 0 job(s); their audio goes at core's next retention sweep\n", out)
	_, _, err = admin("delete-user", "--name", "alice")
	require.ErrorContains(t, err, "no user")
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var actor, action, target string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT actor, action, target FROM audit_log`).Scan(&actor, &action, &target))
	require.Equal(t, []string{"cli:", "delete_user", "alice"}, []string{actor, action, target}, "audited")
	_, _, err = admin("create-key", "--user", "nobody")
	require.ErrorContains(t, err, "no user")
	_, _, err = admin("create-user")
	require.ErrorIs(t, err, errUsage, "--name is required")
	_, _, err = admin("frobnicate")
	require.ErrorIs(t, err, errUsage)
	require.ErrorContains(t, err, `unknown admin command "frobnicate"; run "ytcaption-core admin help" for the commands`)
	_, _, err = admin("create-usr")
	require.ErrorContains(t, err, `did you mean "create-user"?`)
	out, _, err = admin("create-user", "--help")
	require.ErrorIs(t, err, flag.ErrHelp, "help is an answer: exit status 0")
	require.Contains(t, out, "--name", "help goes to stdout")
}
