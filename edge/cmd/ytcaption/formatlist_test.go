package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryFormatListNamesEveryFormat: each command's --format help and
// every completion script's list of formats name exactly formatNames, the
// formats --format takes — translate's once listed five of the eight.
func TestEveryFormatListNamesEveryFormat(t *testing.T) {
	t.Parallel()
	n := len(formatNames)
	said := strings.Join(formatNames[:n-1], ", ") + " or " + formatNames[n-1]
	require.Equal(t, "caption `format`: "+said, formatUsage)
	for _, args := range []string{"transcribe --help", "translate --help", "jobs transcript --help"} {
		var out, errOut bytes.Buffer
		require.Equal(t, exitOK, run(context.Background(), strings.Fields(args), testEnv(&out, &errOut)), "%s: %s", args, errOut.String())
		require.Contains(t, out.String(), "caption format: "+said, args)
	}

	lists := regexp.MustCompile(`--format\) words="([^"]*)"|-l format -xa '([^']*)'`).FindAllStringSubmatch(bashCompletion+fishCompletion, -1)
	require.Len(t, lists, 3, "bash's --format, fish's transcribe and translate --format")
	for _, m := range lists {
		require.Equal(t, strings.Join(formatNames, " "), m[1]+m[2], m[0])
	}
}
