package sqldb

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// postgresOnly are the constructs Translate exists to remove: none may reach
// SQLite.
var postgresOnly = map[string]*regexp.Regexp{
	"a parameter cast":   regexp.MustCompile(`\$\d+::`),
	"a cast":             regexp.MustCompile(`::\w`),
	"a row lock":         regexp.MustCompile(`(?i)\bFOR\s+UPDATE\b`),
	"an array parameter": regexp.MustCompile(`(?i)=\s*ANY\s*\(`),
	"unnest":             regexp.MustCompile(`(?i)\bunnest\(`),
	"an interval":        regexp.MustCompile(`(?i)\binterval\s+'`),
	"greatest/least":     regexp.MustCompile(`(?i)\b(greatest|least)\(`),
	"bool_and":           regexp.MustCompile(`(?i)\bbool_and\(`),
	"ILIKE":              regexp.MustCompile(`(?i)\bILIKE\b`),
	"IS DISTINCT FROM":   regexp.MustCompile(`(?i)\bIS DISTINCT FROM\b`),
	"strpos":             regexp.MustCompile(`(?i)\bstrpos\(`),
	"an array subquery":  regexp.MustCompile(`(?i)\bARRAY\s*\(`),
}

// storeStatements collects the SQL in the store's source: every string
// literal, and every chain of literals joined with +, that reads like a
// statement. A piece built at run time stands in as x.
func storeStatements(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "store", "*.go"))
	require.NoError(t, err)
	var out []string
	sqlLike := regexp.MustCompile(`\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b`)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		var flatten func(e ast.Expr) string
		flatten = func(e ast.Expr) string {
			switch e := e.(type) {
			case *ast.BinaryExpr:
				if e.Op == token.ADD {
					return flatten(e.X) + flatten(e.Y)
				}
			case *ast.BasicLit:
				if e.Kind == token.STRING {
					if s, err := strconv.Unquote(e.Value); err == nil {
						return s
					}
				}
			case *ast.ParenExpr:
				return flatten(e.X)
			}
			return " x "
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op != token.ADD {
					return true
				}
				if s := flatten(n); sqlLike.MatchString(s) {
					out = append(out, s)
				}
				return false // its literals are in s
			case *ast.BasicLit:
				if s := flatten(n); sqlLike.MatchString(s) {
					out = append(out, s)
				}
			}
			return true
		})
	}
	return out
}

// checkTranslated holds what Translate promises for the store's statements.
func checkTranslated(t *testing.T, pg, lite string) {
	t.Helper()
	for what, re := range postgresOnly {
		require.False(t, re.MatchString(lite), "%s survives in\n%s\nfrom\n%s", what, lite, pg)
	}
	require.Equal(t, lite, Translate(lite), "translating twice changes\n%s", pg)
}

// TestTranslateStoreStatements: every statement the store writes leaves
// Translate with no PostgreSQL-only construct, and translating again changes
// nothing.
func TestTranslateStoreStatements(t *testing.T) {
	t.Parallel()
	stmts := storeStatements(t)
	require.Greater(t, len(stmts), 40, "the store's statements were found")
	for _, s := range stmts {
		checkTranslated(t, s, Translate(s))
	}
}

// respell writes a store statement as the store's code might lay it out:
// keywords in any case, the line breaks and indentation between clauses
// changed, other parameter numbers and cast types. (A single space inside a
// construct stays one: Translate covers the constructs as the store writes
// them, and any other spelling fails loudly on SQLite in the store's suite.)
func respell(s string, data []byte) string {
	if len(data) == 0 {
		return s
	}
	layout := []string{"\n", "\n\t\t", "\t", "\r\n  ", "  "}
	casts := []string{"::bigint", "::int8", "::text", "::uuid", "::integer"}
	words := regexp.MustCompile(`\s+`).Split(s, -1)
	gaps := regexp.MustCompile(`\s+`).FindAllString(s, -1)
	var b strings.Builder
	for i, w := range words {
		k := data[i%len(data)]
		switch k % 4 {
		case 1:
			w = strings.ToLower(w)
		case 2:
			w = strings.ToUpper(w)
		}
		if k&0x10 != 0 {
			w = regexp.MustCompile(`\$\d+`).ReplaceAllString(w, "$$"+strconv.Itoa(1+int(k)))
		}
		if k&0x20 != 0 {
			w = regexp.MustCompile(`(?i)::(bigint|int8|text|uuid|integer)\b`).ReplaceAllString(w, casts[int(k>>6)%len(casts)])
		}
		b.WriteString(w)
		if i < len(gaps) {
			if g := gaps[i]; g != " " {
				gaps[i] = layout[int(k>>5)%len(layout)]
			}
			b.WriteString(gaps[i])
		}
	}
	return b.String()
}

var intervals = regexp.MustCompile(`(?i)interval '(\d+) (millisecond|second|minute|hour|day)s?'`)

// checkIntervals: each interval becomes its length in microseconds.
func checkIntervals(t *testing.T, pg, lite string) {
	t.Helper()
	for _, m := range intervals.FindAllStringSubmatch(pg, -1) {
		n, err := strconv.ParseInt(m[1], 10, 64)
		require.NoError(t, err)
		micros := map[string]int64{"millisecond": 1e3, "second": 1e6, "minute": 60e6, "hour": 3600e6, "day": 86400e6}[strings.ToLower(m[2])]
		require.Contains(t, lite, strconv.FormatInt(n*micros, 10), "%s in\n%s\nbecame\n%s", m[0], pg, lite)
	}
}

// FuzzTranslate runs Translate on anything — it must never panic, and it
// must answer the same from its cache as afresh — and on the store's own
// statements respelled, which must come out free of PostgreSQL-only
// constructs, with each interval's length right, and settled (translating
// again changes nothing). Arbitrary text need not settle: "$1:::x:int" loses
// "::x", and then "::int" is a cast. Translate is no PostgreSQL parser, and
// only the store's statements — never user input — reach it.
func FuzzTranslate(f *testing.F) {
	stmts := storeStatements(f)
	for i, s := range stmts {
		f.Add(uint16(i), []byte{}, s)
	}
	f.Add(uint16(0), []byte{1, 2, 0x13, 0x36}, "SELECT $1::text[] FOR UPDATE")
	f.Add(uint16(1), []byte{0x21, 0xff}, "UPDATE t AS j SET a = j.a WHERE id = ANY($1::uuid[]) RETURNING j.a, j.b")
	f.Add(uint16(2), []byte{0}, "now() - interval '99999999999999999999 days' + interval '9223372036854 day'")
	f.Fuzz(func(t *testing.T, pick uint16, shape []byte, any string) {
		first := Translate(any)
		translated.Delete(any) // keep the cache from growing with every input
		require.Equal(t, first, Translate(any), "the cache and a fresh translation differ")
		translated.Delete(any)

		pg := respell(stmts[int(pick)%len(stmts)], shape)
		lite := Translate(pg)
		checkTranslated(t, pg, lite)
		checkIntervals(t, pg, lite)
		translated.Clear()
	})
}

// TestTranslateIntervalUnitsInAnyCase: PostgreSQL reads '1 HOUR' as
// '1 hour'; so does Translate (it once made every upper-case unit 0).
func TestTranslateIntervalUnitsInAnyCase(t *testing.T) {
	t.Parallel()
	require.Equal(t, "now() - 3600000000 AND 2000", Translate("now() - INTERVAL '1 HOUR' AND interval '2 Milliseconds'"))
}
