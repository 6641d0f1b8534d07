package sqldb

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// rewrites turn the store's PostgreSQL into SQLite, in order. They cover the
// constructs the store uses, not PostgreSQL at large: a statement using
// something new fails loudly in the conformance suite, which runs every store
// method on both drivers.
var rewrites = []struct {
	re   *regexp.Regexp
	repl func(m []string) string
}{
	// Row locks: SQLite transactions already hold the database's write lock.
	{regexp.MustCompile(`(?i)\s+FOR UPDATE(\s+SKIP LOCKED)?`), func([]string) string { return "" }},
	// Array parameters travel as JSON arrays.
	{regexp.MustCompile(`(?i)=\s*ANY\((\$\d+)(::\w+\[\])?\)`), func(m []string) string { return "IN (SELECT value FROM json_each(" + m[1] + "))" }},
	{regexp.MustCompile(`(?i)unnest\((\$\d+)::\w+\[\]\) AS (\w+)\((\w+)\)`), func(m []string) string {
		return "(SELECT value AS " + m[3] + " FROM json_each(" + m[1] + ")) AS " + m[2]
	}},
	// Times are microseconds, so an interval is a number.
	{regexp.MustCompile(`(?i)interval '(\d+) (millisecond|second|minute|hour|day)s?'`), func(m []string) string {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return strconv.FormatInt(n*unitMicros[strings.ToLower(m[2])], 10) // the match is case-insensitive; the map is not
	}},
	// Casts: SQLite's types are dynamic.
	{regexp.MustCompile(`::\w+(\[\])?`), func([]string) string { return "" }},
	{regexp.MustCompile(`(?i)\bgreatest\(`), func([]string) string { return "max(" }},
	{regexp.MustCompile(`(?i)\bleast\(`), func([]string) string { return "min(" }},
	// Booleans are 0 and 1: the aggregate AND is the least of them (both
	// skip NULLs).
	{regexp.MustCompile(`(?i)\bbool_and\(`), func([]string) string { return "min(" }},
	{regexp.MustCompile(`(?i)\bILIKE\b`), func([]string) string { return "LIKE" }},
	{regexp.MustCompile(`(?i)\bIS DISTINCT FROM\b`), func([]string) string { return "IS NOT" }},
}

var unitMicros = map[string]int64{"millisecond": 1e3, "second": 1e6, "minute": 60e6, "hour": 3600e6, "day": 86400e6}

var translated sync.Map // PostgreSQL text → SQLite text

var updateAlias = regexp.MustCompile(`(?is)^\s*(?:WITH .*?\)\s*)?UPDATE \w+ AS (\w+) SET .*?\bRETURNING\b`)

// Translate returns the SQLite spelling of a store statement.
func Translate(pg string) string {
	if s, ok := translated.Load(pg); ok {
		return s.(string)
	}
	s := pg
	for _, r := range rewrites {
		s = r.re.ReplaceAllStringFunc(s, func(m string) string { return r.repl(r.re.FindStringSubmatch(m)) })
	}
	// SQLite's RETURNING names the updated table's columns unqualified.
	if m := updateAlias.FindStringSubmatchIndex(s); m != nil {
		alias := s[m[2]:m[3]]
		s = s[:m[1]] + regexp.MustCompile(`\b`+alias+`\.`).ReplaceAllString(s[m[1]:], "")
	}
	translated.Store(pg, s)
	return s
}
