package sqldb

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/translate.golden's SQLite halves from Translate")

const goldenFile = "translate.golden"

// GoldenCase is one statement of testdata/translate.golden: its PostgreSQL
// and the SQLite Translate must make of it. (Exported for the external test
// that compiles the SQLite halves on a migrated database.)
type GoldenCase struct {
	Name, Postgres, SQLite string
}

// ReadGolden parses testdata/translate.golden: "#" comments before the first
// case, then cases of "== name", the PostgreSQL lines, "-- sqlite" and the
// SQLite lines.
func ReadGolden(t testing.TB) []GoldenCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", goldenFile))
	require.NoError(t, err)
	var cases []GoldenCase
	var cur *GoldenCase
	var pg, lite []string
	inLite := false
	flush := func() {
		if cur != nil {
			cur.Postgres = strings.TrimRight(strings.Join(pg, "\n"), "\n")
			cur.SQLite = strings.TrimRight(strings.Join(lite, "\n"), "\n")
			cases = append(cases, *cur)
		}
	}
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "== "):
			flush()
			cur, pg, lite, inLite = &GoldenCase{Name: strings.TrimPrefix(line, "== ")}, nil, nil, false
		case cur == nil:
			require.True(t, line == "" || strings.HasPrefix(line, "#"), "%s:%d: text before the first case", goldenFile, i+1)
		case line == "-- sqlite":
			require.False(t, inLite, "%s:%d: a second -- sqlite in %q", goldenFile, i+1, cur.Name)
			inLite = true
		case inLite:
			lite = append(lite, line)
		default:
			pg = append(pg, line)
		}
	}
	flush()
	names := map[string]bool{}
	for _, c := range cases {
		require.False(t, names[c.Name], "two cases named %q", c.Name)
		names[c.Name] = true
		require.NotEmpty(t, c.Postgres, "case %q has no statement", c.Name)
	}
	return cases
}

func writeGolden(t *testing.T, cases []GoldenCase) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", goldenFile))
	require.NoError(t, err)
	header, _, _ := strings.Cut(string(b), "\n== ")
	var out strings.Builder
	out.WriteString(strings.TrimRight(header, "\n") + "\n")
	for _, c := range cases {
		out.WriteString("\n== " + c.Name + "\n" + c.Postgres + "\n-- sqlite\n" + c.SQLite + "\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join("testdata", goldenFile), []byte(out.String()), 0o644))
}

// TestTranslateGolden: Translate makes of each golden statement exactly the
// SQLite recorded for it (-update records what it makes now, for review in
// the diff), and the cases together fire every rule — a rule no case fires is
// a rule nothing shows working.
func TestTranslateGolden(t *testing.T) {
	cases := ReadGolden(t)
	fired := map[string]bool{}
	for i, c := range cases {
		got := translate(c.Postgres, func(name string) { fired[name] = true })
		if *update {
			cases[i].SQLite = got
			continue
		}
		require.Equal(t, c.SQLite, got, "case %q", c.Name)
		require.Equal(t, got, Translate(c.Postgres), "case %q: Translate and translate differ", c.Name)
	}
	if *update {
		writeGolden(t, cases)
	}
	for _, r := range rules {
		require.True(t, fired[r.name], "no golden case exercises the rule %q: add one to testdata/%s", r.name, goldenFile)
	}
}
