package sqldb

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// rule is one rewrite from the store's PostgreSQL to SQLite. Its name is what
// the golden tests (testdata/translate.golden) check every rule is exercised
// by.
type rule struct {
	name  string
	apply func(string) string
}

// pattern is a rule that replaces each match of re with repl of its
// submatches.
func pattern(name, re string, repl func(m []string) string) rule {
	r := regexp.MustCompile(re)
	return rule{name, func(s string) string {
		return r.ReplaceAllStringFunc(s, func(m string) string { return repl(r.FindStringSubmatch(m)) })
	}}
}

func literal(name, re, repl string) rule {
	return pattern(name, re, func([]string) string { return repl })
}

// unnestArrays is the unnest rule's SQLite: the first array's json_each,
// and each further array's element at the same index.
func unnestArrays(m []string) string {
	params, names := strings.Split(m[1], ","), strings.Split(m[3], ",")
	if len(params) != len(names) {
		return m[0] // not the store's: let SQLite refuse it
	}
	cols := make([]string, len(params))
	var first string
	for i, p := range params {
		p, name := strings.TrimSpace(p[:strings.Index(p, "::")]), strings.TrimSpace(names[i])
		if i == 0 {
			first, cols[i] = p, "value AS "+name
		} else {
			cols[i] = "json_extract(" + p + ", '$[' || key || ']') AS " + name
		}
	}
	return "(SELECT " + strings.Join(cols, ", ") + " FROM json_each(" + first + ")) AS " + m[2]
}

// rules turn the store's PostgreSQL into SQLite, in order. They cover the
// constructs the store uses, not PostgreSQL at large: a statement using
// something new fails loudly in the conformance suite, which runs every store
// method on both drivers.
var rules = []rule{
	// Row locks: SQLite transactions already hold the database's write lock.
	literal("row lock", `(?i)\s+FOR UPDATE(\s+SKIP LOCKED)?`, ""),
	// Array parameters travel as JSON arrays.
	pattern("= ANY(array parameter)", `(?i)=\s*ANY\((\$\d+)(::\w+\[\])?\)`, func(m []string) string {
		return "IN (SELECT value FROM json_each(" + m[1] + "))"
	}),
	// unnest of several arrays zips them: row i takes element i of each.
	pattern("unnest(array parameters)", `(?i)unnest\((\$\d+::\w+\[\](?:,\s*\$\d+::\w+\[\])*)\) AS (\w+)\(([\w\s,]+)\)`, unnestArrays),
	// Times are microseconds, so an interval is a number.
	pattern("interval", `(?i)interval '(\d+) (millisecond|second|minute|hour|day)s?'`, func(m []string) string {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return strconv.FormatInt(n*unitMicros[strings.ToLower(m[2])], 10) // the match is case-insensitive; the map is not
	}),
	// Casts: SQLite's types are dynamic.
	literal("cast", `::\w+(\[\])?`, ""),
	literal("greatest", `(?i)\bgreatest\(`, "max("),
	literal("least", `(?i)\bleast\(`, "min("),
	// Booleans are 0 and 1: the aggregate AND is the least of them (both
	// skip NULLs).
	literal("bool_and", `(?i)\bbool_and\(`, "min("),
	literal("ILIKE", `(?i)\bILIKE\b`, "LIKE"),
	literal("IS DISTINCT FROM", `(?i)\bIS DISTINCT FROM\b`, "IS NOT"),
	// Both find a substring literally (no wildcards), case-sensitively, with
	// the haystack first, and count from 1 (0: not found).
	literal("strpos", `(?i)\bstrpos\(`, "instr("),
	{"ARRAY(subquery)", arraySubqueries},
	{"UPDATE alias in RETURNING", returningAlias},
}

var unitMicros = map[string]int64{"millisecond": 1e3, "second": 1e6, "minute": 60e6, "hour": 3600e6, "day": 86400e6}

var arrayOpen = regexp.MustCompile(`(?i)\bARRAY\(`)

// arraySubqueries rewrites each ARRAY(subquery) — an array of a one-column
// subquery's rows, in its order — to the JSON array of them that array
// scan targets read on SQLite (see liteDest). The subquery becomes a CTE so
// its column can be named whatever it is called; it may still name the outer
// query's columns. SQLite keeps a FROM subquery's ORDER BY when the outer
// query aggregates with anything but count, min and max, so json_group_array
// sees the rows in order. With no rows it gives [], as ARRAY() gives {}.
// An unbalanced ARRAY( is left alone, to fail loudly on SQLite.
func arraySubqueries(s string) string {
	var b strings.Builder
	for {
		loc := arrayOpen.FindStringIndex(s)
		if loc == nil {
			b.WriteString(s)
			return b.String()
		}
		end := closingParen(s, loc[1])
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:loc[0]])
		b.WriteString("(WITH array_rows(value) AS (" + arraySubqueries(s[loc[1]:end]) + ") SELECT json_group_array(value) FROM array_rows)")
		s = s[end+1:]
	}
}

// closingParen is the index of the parenthesis closing the one open before
// s[from], skipping quoted text, or -1.
func closingParen(s string, from int) int {
	depth := 1
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\'', '"':
			j := strings.IndexByte(s[i+1:], s[i])
			if j < 0 {
				return -1
			}
			i += j + 1
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

var updateAlias = regexp.MustCompile(`(?is)^\s*(?:WITH .*?\)\s*)?UPDATE \w+ AS (\w+) SET .*?\bRETURNING\b`)

// returningAlias drops the updated table's alias in RETURNING: SQLite's
// RETURNING names the updated table's columns unqualified.
func returningAlias(s string) string {
	m := updateAlias.FindStringSubmatchIndex(s)
	if m == nil {
		return s
	}
	alias := s[m[2]:m[3]]
	return s[:m[1]] + regexp.MustCompile(`\b`+alias+`\.`).ReplaceAllString(s[m[1]:], "")
}

var translated sync.Map // PostgreSQL text → SQLite text

// Translate returns the SQLite spelling of a store statement.
func Translate(pg string) string {
	if s, ok := translated.Load(pg); ok {
		return s.(string)
	}
	s := translate(pg, nil)
	translated.Store(pg, s)
	return s
}

// translate applies the rules, calling fired (if not nil) with the name of
// each that changed the text.
func translate(s string, fired func(name string)) string {
	for _, r := range rules {
		out := r.apply(s)
		if fired != nil && out != s {
			fired(r.name)
		}
		s = out
	}
	return s
}
