// Package envflag gives every command-line flag an environment twin, so each
// binary states its settings once: flag > env > default. The twin of --core-url
// under prefix YTCAPTION_EDGE is YTCAPTION_EDGE_CORE_URL.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrUsage marks a command line that cannot run: exit status 2.
var ErrUsage = errors.New("usage error")

// ExitStatus is how every binary ends on run's error: 0 when it is
// flag.ErrHelp (the help was asked for and printed); otherwise the error on
// w as "prog: err", and 2 for ErrUsage, 1 for anything else.
func ExitStatus(prog string, err error, w io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(w, prog+":", err)
	if errors.Is(err, ErrUsage) {
		return 2
	}
	return 1
}

// ParseCommand parses a command's flags the same way in every binary: -h and
// --help print the summary and flags to stdout (so `| less` works) and return
// flag.ErrHelp, for exit status 0; a bad flag returns one line wrapping
// ErrUsage, with the nearest flag's name when one is close, instead of
// the whole flag list; stray arguments are refused the same way.
func ParseCommand(fs *flag.FlagSet, prefix, summary string, args []string, getenv func(string) string, stdout io.Writer) error {
	fs.SetOutput(io.Discard) // the flag package would print the usage on every error
	fs.Usage = func() {}
	err := Parse(fs, prefix, args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		Usage(fs, prefix, summary)()
		return err
	}
	hint := fmt.Sprintf("run '%s --help' for its flags", fs.Name())
	if err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
			if near := Nearest(strings.TrimPrefix(name, "-"), flagNames(fs)); near != "" {
				hint = fmt.Sprintf("did you mean --%s? (%s)", near, hint)
			}
		}
		return fmt.Errorf("%w: %v; %s", ErrUsage, err, hint)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q; %s", ErrUsage, fs.Args(), hint)
	}
	return nil
}

func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// Nearest returns the candidate closest to s by edit distance, if it is
// close enough to be a typo of it (at most a third of s's letters wrong),
// or "".
func Nearest(s string, candidates []string) string {
	best, bestD := "", len(s)/3+1
	for _, c := range candidates {
		if d := distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Name returns the environment variable that backs flag name under prefix.
func Name(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args, then fills every flag not given on the command line from
// its environment twin, if that is set.
func Parse(fs *flag.FlagSet, prefix string, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := Name(prefix, f.Name)
		if v := getenv(env); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, serr)
			}
		}
	})
	return err
}

// Usage returns a FlagSet usage func that prints a summary and each flag with
// its environment twin (none when prefix is "").
func Usage(fs *flag.FlagSet, prefix, summary string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintln(w, summary)
		if prefix == "" { // flags without environment twins
			fmt.Fprintln(w, "\nFlags:")
		} else {
			fmt.Fprintln(w, "\nFlags (each also read from the environment variable shown; a flag wins over its variable):")
		}
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s\t%s%s\n", f.Name, f.Usage, def)
			if prefix != "" {
				fmt.Fprintf(w, "  \t[$%s]\n", Name(prefix, f.Name))
			}
		})
	}
}
