package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

const speakersUsage = `Usage: ytcaption speakers SUBCOMMAND [flags]

The speakers of a job made with transcribe --speakers.

Subcommands:
  rename JOB 'LABEL=NAME'...   name speakers: every caption format shows the names

Run "ytcaption speakers SUBCOMMAND --help" for its flags.`

const renameAbout = `Names the speakers of a job that was made with --speakers, as
'Speaker 1=Alice' 'Speaker 2=Bob': every caption format of the job shows the
names from then on. The names replace the job's earlier ones; --clear removes
them all. At most 32 names, each 1 to 64 printable characters.`

// speakersCmd is "ytcaption speakers": naming a job's speakers.
func speakersCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("speakers: missing subcommand: rename (run \"ytcaption speakers --help\")")
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) {
		if len(rest) == 0 {
			fmt.Fprintln(e.stdout, speakersUsage)
			return flag.ErrHelp
		}
		return speakersCmd(ctx, append(slices.Clone(rest), "--help"), e)
	}
	if sub != "rename" {
		return unknownWord("subcommand", sub, []string{"rename"}, "ytcaption speakers --help")
	}
	c := newCommand("speakers rename", "speakers rename JOB 'LABEL=NAME'... [--clear] [--json]", renameAbout, []string{"JOB"}, e)
	c.more = true
	clear := c.fs.Bool("clear", false, "remove every name: the labels show again")
	asJSON := c.fs.Bool("json", false, "print the job as JSON")
	pos, err := c.parse(rest)
	if err != nil {
		return err
	}
	id, pairs := pos[0], pos[1:]
	names, err := parseSpeakerNames(pairs)
	switch {
	case err != nil:
		return err
	case *clear && len(names) > 0:
		return c.usageErr("--clear removes every name: give no LABEL=NAME with it")
	case !*clear && len(names) == 0:
		return c.usageErr("give at least one 'LABEL=NAME', such as 'Speaker 1=Alice' (or --clear)")
	}
	cl, _, err := connect(e)
	if err != nil {
		return err
	}
	var j job
	body := map[string]any{"speakers": names}
	if _, err := cl.call(ctx, http.MethodPatch, "/v1/jobs/"+url.PathEscape(id), body, nil, &j); err != nil {
		return jobError(id, err)
	}
	if *asJSON {
		return writeJSON(e.stdout, j.raw)
	}
	for _, l := range sortedLabels(j.SpeakerNames) {
		fmt.Fprintf(e.stdout, "%s: %s\n", l, j.SpeakerNames[l])
	}
	return nil
}

func sortedLabels(names map[string]string) []string {
	labels := make([]string, 0, len(names))
	for l := range names {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	return labels
}

// speakerList is a job's speaker names on one line: "Speaker 1=Alice, …".
func speakerList(names map[string]string) string {
	var parts []string
	for _, l := range sortedLabels(names) {
		parts = append(parts, l+"="+names[l])
	}
	return strings.Join(parts, ", ")
}

// parseSpeakerNames reads 'LABEL=NAME' arguments; the server bounds them.
func parseSpeakerNames(pairs []string) (map[string]string, error) {
	names := map[string]string{}
	for _, p := range pairs {
		label, name, ok := strings.Cut(p, "=")
		label, name = strings.TrimSpace(label), strings.TrimSpace(name)
		if !ok || label == "" || name == "" {
			return nil, usagef("speakers rename: %q is not LABEL=NAME, such as 'Speaker 1=Alice'", p)
		}
		if _, dup := names[label]; dup {
			return nil, usagef("speakers rename: %s is named twice", label)
		}
		names[label] = name
	}
	return names, nil
}

// checkSpeakers checks transcribe's --speakers, --min-speakers and
// --max-speakers as the server would, before anything is uploaded.
func checkSpeakers(on bool, lo, hi int) error {
	switch {
	case !on && (lo != 0 || hi != 0):
		return usagef("transcribe: --min-speakers and --max-speakers need --speakers")
	case lo < 0 || lo > 32 || hi < 0 || hi > 32:
		return usagef("transcribe: --min-speakers and --max-speakers must be from 1 to 32")
	case lo > 0 && hi > 0 && lo > hi:
		return usagef("transcribe: --min-speakers (%d) is more than --max-speakers (%d)", lo, hi)
	}
	return nil
}

// speakerFields adds the speaker options to a job's body, only when chosen:
// servers without them keep working.
func speakerFields(body map[string]any, on bool, lo, hi int) {
	if !on {
		return
	}
	body["speakers"] = true
	if lo > 0 {
		body["min_speakers"] = lo
	}
	if hi > 0 {
		body["max_speakers"] = hi
	}
}
