// Package envflag gives every command-line flag an environment twin, so each
// binary states its settings once: flag > env > default. The twin of --core-url
// under prefix YTCAPTION_EDGE is YTCAPTION_EDGE_CORE_URL.
package envflag

import (
	"flag"
	"fmt"
	"strings"
)

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
// its environment twin.
func Usage(fs *flag.FlagSet, prefix, summary string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintln(w, summary)
		fmt.Fprintln(w, "\nFlags (each also read from the environment variable shown; a flag wins over its variable):")
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s\t%s%s\n  \t[$%s]\n", f.Name, f.Usage, def, Name(prefix, f.Name))
		})
	}
}
