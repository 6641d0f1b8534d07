package ytdlp

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReleaseDateReadsYtDlpVersions(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"2023.03.04":        "2023-03-04", // Debian 12's
		"2025.11.12":        "2025-11-12",
		"2025.11.12.232851": "2025-11-12", // nightly
		"2026.01.31\n":      "2026-01-31",
	} {
		got, ok := ReleaseDate(v)
		require.True(t, ok, v)
		require.Equal(t, want, got.Format(time.DateOnly), v)
	}
	for _, v := range []string{"", "dev", "2023.3", "2023.13.01", "v2023.03.04", "1.2.3"} {
		_, ok := ReleaseDate(v)
		require.False(t, ok, v)
	}
}

func TestOnlyAYtDlpThatKnowsThemGetsTheJSRuntimeOptions(t *testing.T) {
	t.Parallel()
	require.False(t, KnowsJSRuntimes("2023.03.04"))
	require.False(t, KnowsJSRuntimes("2025.11.11"))
	require.True(t, KnowsJSRuntimes("2025.11.12"))
	require.True(t, KnowsJSRuntimes("2026.10.01.120000"))
	require.False(t, KnowsJSRuntimes("unknown"))
}

func TestJSRuntimeOptionsAreExactlyTheConfiguredOnes(t *testing.T) {
	t.Parallel()
	old := New(Config{Version: "2023.03.04", JSRuntimes: "node"}).common("/tmp/job")
	require.NotContains(t, old, "--js-runtimes", "Debian's yt-dlp would refuse the option and every download with it")
	require.NotContains(t, old, "--no-plugin-dirs")

	args := New(Config{Version: "2026.11.20", JSRuntimes: "deno:/opt/tools/deno, node", RemoteComponents: "ejs:github"}).common("/tmp/job")
	s := strings.Join(args, " ")
	require.Contains(t, s, "--no-plugin-dirs --no-js-runtimes --no-remote-components --js-runtimes deno:/opt/tools/deno --js-runtimes node --remote-components ejs:github")

	def := strings.Join(New(Config{Version: "2026.11.20"}).common("/tmp/job"), " ")
	require.Contains(t, def, "--no-js-runtimes --no-remote-components --js-runtimes deno", "deno is the default")
	require.NotContains(t, def, "--remote-components ejs", "no remote code unless configured")
}
