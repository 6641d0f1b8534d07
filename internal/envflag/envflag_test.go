package envflag

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	t.Parallel()
	env := map[string]string{"YTC_X_ADDR": ":9", "YTC_X_CORE_URL": "http://env", "YTC_X_LEASE": "5s"}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	addr := fs.String("addr", ":8000", "")
	core := fs.String("core-url", "http://default", "")
	lease := fs.Duration("lease", time.Second, "")
	other := fs.String("other", "d", "")
	require.NoError(t, Parse(fs, "YTC_X", []string{"--addr", ":1"}, func(k string) string { return env[k] }))
	require.Equal(t, ":1", *addr)
	require.Equal(t, "http://env", *core)
	require.Equal(t, 5*time.Second, *lease)
	require.Equal(t, "d", *other)
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Duration("lease", time.Second, "")
	err := Parse(fs, "YTC", nil, func(k string) string { return map[string]string{"YTC_LEASE": "soon"}[k] })
	require.ErrorContains(t, err, "YTC_LEASE")
}

func TestUsageListsTwins(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&buf)
	fs.String("core-url", "http://c", "where core listens")
	fs.Usage = Usage(fs, "YTC_E", "ytc-e: the edge")
	fs.Usage()
	out, _ := io.ReadAll(&buf)
	require.Contains(t, string(out), "$YTC_E_CORE_URL")
	require.Contains(t, string(out), "where core listens (default http://c)")
}

func newCommand() *flag.FlagSet {
	fs := flag.NewFlagSet("ytcaption-x", flag.ContinueOnError)
	fs.String("postgres-url", "", "database")
	fs.String("data-dir", "", "state")
	return fs
}

// TestHelpGoesToStdoutAsErrHelp: --help is an answer, not an error — the
// flags on stdout and flag.ErrHelp, which the mains turn into exit status 0.
func TestHelpGoesToStdoutAsErrHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help", "-help"} {
		var out bytes.Buffer
		err := ParseCommand(newCommand(), "YTC_X", "ytcaption-x: does x.", []string{arg}, func(string) string { return "" }, &out)
		require.ErrorIs(t, err, flag.ErrHelp, arg)
		require.Contains(t, out.String(), "ytcaption-x: does x.")
		require.Contains(t, out.String(), "--postgres-url")
		require.Contains(t, out.String(), "$YTC_X_DATA_DIR")
	}
}

// TestAMistypedFlagIsOneLineWithTheNearestName: no page of flags, the
// error once, and the flag the user meant.
func TestAMistypedFlagIsOneLineWithTheNearestName(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := ParseCommand(newCommand(), "YTC_X", "", []string{"--postgres-ulr", "x"}, func(string) string { return "" }, &out)
	require.ErrorIs(t, err, ErrUsage)
	require.Equal(t, "usage error: flag provided but not defined: -postgres-ulr; did you mean --postgres-url? (run 'ytcaption-x --help' for its flags)", err.Error())
	require.Empty(t, out.String())

	err = ParseCommand(newCommand(), "YTC_X", "", []string{"--verbose"}, func(string) string { return "" }, &out)
	require.NotContains(t, err.Error(), "did you mean", "nothing is close to --verbose")

	err = ParseCommand(newCommand(), "YTC_X", "", []string{"--data-dir", "d", "extra"}, func(string) string { return "" }, &out)
	require.ErrorIs(t, err, ErrUsage)
	require.Contains(t, err.Error(), `unexpected arguments ["extra"]`)
}

func TestNearest(t *testing.T) {
	t.Parallel()
	names := []string{"transcribe", "jobs", "login", "logout"}
	require.Equal(t, "transcribe", Nearest("transcirbe", names))
	require.Equal(t, "login", Nearest("logn", names))
	require.Equal(t, "", Nearest("upload", names))
	require.Equal(t, "jobs", Nearest("job", names))
}

// TestExitStatus: help is success and prints nothing more; a usage error is
// 2 and a failure 1, each named after the program on stderr.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	var w bytes.Buffer
	require.Equal(t, 0, ExitStatus("ytcaption-x", flag.ErrHelp, &w))
	require.Empty(t, w.String())
	require.Equal(t, 2, ExitStatus("ytcaption-x", fmt.Errorf("%w: no --out", ErrUsage), &w))
	require.Equal(t, "ytcaption-x: usage error: no --out\n", w.String())
	w.Reset()
	require.Equal(t, 1, ExitStatus("ytcaption-x", errors.New("database unreachable"), &w))
	require.Equal(t, "ytcaption-x: database unreachable\n", w.String())
}
