package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunbooksNameOnlyCommandsThatExist finds every `ytcaption-core …`
// command in docs/runbooks.md and checks the command and its flags exist.
func TestRunbooksNameOnlyCommandsThatExist(t *testing.T) {
	b, err := os.ReadFile("../../../docs/runbooks.md")
	require.NoError(t, err)
	doc := strings.Join(strings.Fields(string(b)), " ") // commands may wrap
	uses := regexp.MustCompile("`ytcaption-core ((?:admin )?[a-z-]+)([^`]*)`").FindAllStringSubmatch(doc, -1)
	require.NotEmpty(t, uses)
	for _, u := range uses {
		var out, errOut bytes.Buffer
		args := append(strings.Fields(u[1]), "--help")
		_ = run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
		help := out.String() + errOut.String()
		require.NotContains(t, help, "unknown", "ytcaption-core %s", u[1])
		for _, flag := range regexp.MustCompile(`--[a-z][a-z0-9-]*`).FindAllString(u[2], -1) {
			require.Regexp(t, `(?m)^\s+--?`+regexp.QuoteMeta(strings.TrimLeft(flag, "-"))+`\b`, help, "ytcaption-core %s has no %s", u[1], flag)
		}
	}
}
