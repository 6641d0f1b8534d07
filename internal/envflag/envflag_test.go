package envflag

import (
	"bytes"
	"flag"
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
