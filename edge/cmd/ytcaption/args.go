package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/ytcaption/ytcaption/internal/envflag"
)

// command is one (sub)command's flags and what its --help says. The CLI
// does not use envflag.ParseCommand: its flags may stand anywhere among the
// arguments ("transcribe URL -o out.srt"), and its environment is
// YTCAPTION_URL and YTCAPTION_API_KEY, not a twin per flag.
type command struct {
	fs       *flag.FlagSet
	path     string   // "transcribe", "jobs get": how help and errors name it
	synopsis string   // the usage line after "ytcaption "
	about    string   // what it does, for --help
	args     []string // the positional arguments' names, as the synopsis spells them
	more     bool     // more positional arguments than args may follow
	stdout   io.Writer
}

func newCommand(path, synopsis, about string, args []string, e env) *command {
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	// The flag package would print the whole usage on every error; errors
	// here are one line, and --help is printed by help.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{fs: fs, path: path, synopsis: synopsis, about: about, args: args, stdout: e.stdout}
}

// help prints the command's usage and flags on stdout, so `| less` works.
func (c *command) help() {
	fmt.Fprintf(c.stdout, "Usage: ytcaption %s\n\n%s\n", c.synopsis, c.about)
	var lines []string
	c.fs.VisitAll(func(f *flag.Flag) {
		kind, use := flag.UnquoteUsage(f)
		name := dashed(f.Name)
		if kind != "" {
			name += " " + strings.ToUpper(kind)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			use += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		lines = append(lines, fmt.Sprintf("  %s\n        %s", name, use))
	})
	if len(lines) > 0 {
		fmt.Fprintf(c.stdout, "\nFlags:\n%s\n", strings.Join(lines, "\n"))
	}
}

// dashed spells a flag as people type it: -o, --format.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// given says whether the flag name was on the command line, for flags
// whose every value means something (share create --revision 0).
func (c *command) given(name string) bool {
	found := false
	c.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// usageErr is a usage error about this command: one line, ending in where
// to read more.
func (c *command) usageErr(format string, args ...any) error {
	return usagef("%s: %s (run \"ytcaption %s --help\")", c.path, fmt.Sprintf(format, args...), c.path)
}

// parse parses flags wherever they stand among the arguments, as people
// type them ("transcribe URL -o out.srt"); "--" ends the flags. It wants
// exactly the positional arguments named in c.args. -h and --help print
// help and return flag.ErrHelp.
func (c *command) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help()
				return nil, err
			}
			return nil, c.flagErr(err)
		}
		rest := c.fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) < len(c.args):
		return nil, usagef("%s: missing %s; usage: ytcaption %s (run \"ytcaption %s --help\")",
			c.path, strings.Join(c.args[len(pos):], " "), c.synopsis, c.path)
	case len(pos) > len(c.args) && !c.more:
		return nil, c.usageErr("unexpected argument %q", pos[len(c.args)])
	}
	return pos, nil
}

// flagErr rewrites the flag package's error as one line, with the flag the
// user probably meant.
func (c *command) flagErr(err error) error {
	// The flag package spells every flag with one dash; people type two.
	msg := flagName.ReplaceAllStringFunc(err.Error(), func(m string) string {
		i := strings.LastIndex(m, " -")
		return m[:i+1] + dashed(m[i+2:])
	})
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
		var names []string
		c.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg = "unknown flag " + dashed(name)
		if near := envflag.Nearest(name, names); near != "" {
			msg += "; did you mean " + dashed(near) + "?"
		}
	}
	return c.usageErr("%s", msg)
}

var flagName = regexp.MustCompile(`(flag|for|argument:) -[\w-]+`)

// unknownWord is the error for a command or subcommand nobody has, with
// the one the user probably meant.
func unknownWord(what, word string, known []string, helpCmd string) error {
	msg := fmt.Sprintf("unknown %s %q", what, word)
	if near := envflag.Nearest(word, known); near != "" {
		msg += fmt.Sprintf("; did you mean %s?", near)
	}
	return usagef("%s (run \"%s\")", msg, helpCmd)
}

// isHelp says whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}
