package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryFormOfHelpGoesToStdout: help is an answer — on stdout, so
// `| less` shows it, with exit status 0 and nothing on stderr — however it
// is asked for.
func TestEveryFormOfHelpGoesToStdout(t *testing.T) {
	t.Parallel()
	const (
		global     = "ytcaption jobs list [--limit N]"
		transcribe = "Usage: ytcaption transcribe URL|FILE [flags]"
		jobs       = "Usage: ytcaption jobs SUBCOMMAND"
		jobsGet    = "Usage: ytcaption jobs get ID"
	)
	for _, tc := range []struct {
		args string
		want string
	}{
		{"help", global},
		{"--help", global},
		{"-h", global},
		{"help transcribe", transcribe},
		{"transcribe --help", transcribe},
		{"transcribe -h", transcribe},
		{"transcribe http://a/b.ogg -o x.srt --help", transcribe},
		{"jobs --help", jobs},
		{"jobs -h", jobs},
		{"jobs help", jobs},
		{"help jobs", jobs},
		{"help jobs get", jobsGet},
		{"jobs get --help", jobsGet},
		{"jobs help get", jobsGet},
		{"jobs cancel -h", "Usage: ytcaption jobs cancel ID"},
		{"jobs transcript --help", "Usage: ytcaption jobs transcript ID"},
		{"jobs list --help", "Usage: ytcaption jobs list"},
		{"help login", "Usage: ytcaption login"},
		{"version --help", "Usage: ytcaption version"},
		{"completion --help", "Usage: ytcaption completion bash|zsh|fish"},
		{"batches --help", "Usage: ytcaption batches SUBCOMMAND"},
		{"help batches cancel", "Usage: ytcaption batches cancel ID"},
		{"batches list -h", "Usage: ytcaption batches list"},
		{"transcribe --help", "PLAYLIST_URL|URL URL... -o DIR/"},
		{"help", "ytcaption share create ID"},
		{"help share", "Usage: ytcaption share SUBCOMMAND"},
		{"share --help", "Usage: ytcaption share SUBCOMMAND"},
		{"share help", "Usage: ytcaption share SUBCOMMAND"},
		{"help share create", "Usage: ytcaption share create JOB [--revision N] [--expires DURATION]"},
		{"share help list", "Usage: ytcaption share list JOB"},
		{"share revoke -h", "Usage: ytcaption share revoke JOB SHARE_ID"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), strings.Fields(tc.args), testEnv(&out, &errOut))
		require.Equal(t, exitOK, code, "%s: %s", tc.args, errOut.String())
		require.Contains(t, out.String(), tc.want, tc.args)
		require.Empty(t, errOut.String(), tc.args)
	}
}

// TestAMistakeIsOneLine: what is wrong, what was probably meant, and which
// --help to read — once, on stderr, with exit status 2; never a page of
// flags.
func TestAMistakeIsOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args string
		want string
	}{
		{"transcribe http://a/b.ogg --fromat vtt",
			`ytcaption: transcribe: unknown flag --fromat; did you mean --format? (run "ytcaption transcribe --help")`},
		{"transcribe http://a/b.ogg -o",
			`ytcaption: transcribe: flag needs an argument: -o (run "ytcaption transcribe --help")`},
		{"transcribe http://a/b.ogg --verbose",
			`ytcaption: transcribe: unknown flag --verbose (run "ytcaption transcribe --help")`},
		{"jobs get abc --jsn",
			`ytcaption: jobs get: unknown flag --jsn; did you mean --json? (run "ytcaption jobs get --help")`},
		{"transcrbe http://a/b.ogg",
			`ytcaption: unknown command "transcrbe"; did you mean transcribe? (run "ytcaption help")`},
		{"help transcirbe",
			`ytcaption: unknown command "transcirbe"; did you mean transcribe? (run "ytcaption help")`},
		{"jobs lst",
			`ytcaption: unknown jobs subcommand "lst"; did you mean list? (run "ytcaption jobs --help")`},
		{"transcribe",
			`ytcaption: transcribe: missing URL or FILE; usage: ytcaption transcribe URL|FILE [flags] (run "ytcaption transcribe --help")`},
		{"jobs get",
			`ytcaption: jobs get: missing ID; usage: ytcaption jobs get ID [--json] (run "ytcaption jobs get --help")`},
		{"jobs",
			`ytcaption: jobs: missing subcommand: list, get, cancel, transcript (run "ytcaption jobs --help")`},
		{"jobs list --limit many",
			`ytcaption: jobs list: invalid value "many" for flag --limit: parse error (run "ytcaption jobs list --help")`},
		{"completion bas",
			`ytcaption: unknown shell "bas"; did you mean bash? (run "ytcaption completion --help")`},
		{"transcribe " + filepath.Join(dir, "nope.ogg"),
			`ytcaption: transcribe: "` + filepath.Join(dir, "nope.ogg") + `" is neither an http(s) URL nor a file (run "ytcaption transcribe --help")`},
		{"transcribe " + dir,
			`ytcaption: transcribe: "` + dir + `" is not a file to upload (run "ytcaption transcribe --help")`},
		{"transcribe https://www.youtube.com/playlist?list=PL0123456789",
			`ytcaption: transcribe: a playlist or channel makes one caption file per video: give -o DIR/ (run "ytcaption transcribe --help")`},
		{"transcribe https://www.youtube.com/@someone/videos",
			`ytcaption: transcribe: a playlist or channel makes one caption file per video: give -o DIR/ (run "ytcaption transcribe --help")`},
		{"transcribe http://a/1.ogg http://a/2.ogg",
			`ytcaption: transcribe: several URLs make one caption file per video: give -o DIR/ (run "ytcaption transcribe --help")`},
		{"transcribe http://a/1.ogg " + filepath.Join(dir, "b.ogg") + " -o " + dir,
			`ytcaption: transcribe: "` + filepath.Join(dir, "b.ogg") + `" is not an http(s) URL: a batch is made of URLs (upload files one by one) (run "ytcaption transcribe --help")`},
		{"transcribe http://a/1.ogg --max-items 5",
			`ytcaption: transcribe: --max-items applies to a playlist or a list of URLs (with -o DIR/), not to one video (run "ytcaption transcribe --help")`},
		{"transcribe https://www.youtube.com/@someone -o " + dir + " --order random",
			`ytcaption: transcribe: --order must be playlist or newest, got "random" (run "ytcaption transcribe --help")`},
		{"transcribe https://www.youtube.com/@someone -o " + dir + " --after 31/01/2026",
			`ytcaption: transcribe: --after must be a date such as 2026-01-31, got "31/01/2026" (run "ytcaption transcribe --help")`},
		{"transcribe --batch http://a/page -o " + dir + " --follow",
			`ytcaption: transcribe: --follow applies to one job, not to a batch (run "ytcaption transcribe --help")`},
		{"transcribe --batch http://a/page -o " + dir + " --max-itmes 3",
			`ytcaption: transcribe: unknown flag --max-itmes; did you mean --max-items? (run "ytcaption transcribe --help")`},
		{"batches lst",
			`ytcaption: unknown batches subcommand "lst"; did you mean list? (run "ytcaption batches --help")`},
		{"batches",
			`ytcaption: batches: missing subcommand: list, get, cancel (run "ytcaption batches --help")`},
		{"batches get",
			`ytcaption: batches get: missing ID; usage: ytcaption batches get ID [--json] (run "ytcaption batches get --help")`},
		{"batches list --limit 500",
			`ytcaption: batches list: --limit must be from 1 to 100, got 500 (run "ytcaption batches list --help")`},
		{"batchs list",
			`ytcaption: unknown command "batchs"; did you mean batches? (run "ytcaption help")`},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), strings.Fields(tc.args), testEnv(&out, &errOut))
		require.Equal(t, exitUsage, code, tc.args)
		require.Equal(t, tc.want+"\n", errOut.String(), tc.args)
		require.Empty(t, out.String(), tc.args)
	}
}

// TestURLOnlyFlagsAreRefusedForAFile: a file has no captions of its own
// to take (--source); saying so beats ignoring the flag.
func TestURLOnlyFlagsAreRefusedForAFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "talk.ogg")
	require.NoError(t, os.WriteFile(file, []byte("OggS"), 0o600))
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"transcribe", file, "--source", "captions"}, testEnv(&out, &errOut))
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut.String(), "--source applies to URLs, not to an uploaded file")
}
