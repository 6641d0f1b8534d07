// Package engines matches jobs to what the gpu-nodes say their engines can
// do. Core keeps no table of engines: each node advertises its engines'
// capabilities with every poll for work (AcquireJob), the store records them
// per node, and core uses them twice — to refuse at creation a job that no
// node seen lately could serve (400, not a failed job an hour later), and to
// hand a job only to a node whose engine serves it. What an engine can do is
// written once, beside its adapter in gpu-node/internal/engine.
package engines

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Tasks a job may ask for.
const (
	Transcribe = "transcribe"
	Translate  = "translate"
)

// Caps is what one engine on a gpu-node advertised. The JSON form is how the
// store keeps it.
type Caps struct {
	Name      string   `json:"name"`
	Models    []string `json:"models,omitempty"`    // the models a job may name, the default first
	Languages []string `json:"languages,omitempty"` // the languages it recognises; empty: any
	Translate bool     `json:"translate,omitempty"` // task "translate": English text of any speech
	Prompt    bool     `json:"prompt,omitempty"`    // it reads a prompt
	Speakers  bool     `json:"speakers,omitempty"`  // it labels who speaks
}

// Want is what a job asks of an engine. Empty Engine and Model: any.
type Want struct {
	Engine, Model, Language, Task string
	Prompt                        bool
	Speakers                      bool // speaker labels
}

// Plain says whether w asks for nothing beyond what every engine does:
// transcription, without a prompt, in a language the engine detects.
func (w Want) Plain() bool {
	return w.Engine == "" && w.Model == "" && w.Task == Transcribe && !w.Prompt && !w.Speakers && w.Language == "auto"
}

func (c Caps) speaks(language string) bool {
	return language == "auto" || len(c.Languages) == 0 || slices.Contains(c.Languages, language)
}

// Check refuses w, with unsupported_option and a message that says what is
// on offer, when no engine in offered serves it; offered is what the nodes
// seen lately advertised. With none seen, only a named engine or model is
// refused: a job asking for neither waits in the queue for a node, whatever
// its language, task or prompt, since nobody has said what is on offer.
func Check(offered []Caps, w Want) error {
	if w.Task != Transcribe && w.Task != Translate {
		return job.Errorf(job.CodeInvalidArgument, "task must be transcribe or translate, got %q", w.Task)
	}
	if w.Plain() || (len(offered) == 0 && w.Engine == "" && w.Model == "") {
		return nil
	}
	// Narrow down what is on offer one option at a time, so that the message
	// names the first option nothing serves and what is there instead.
	list := func(names []string) string {
		if len(offered) == 0 {
			return "none (no gpu-node has called in lately)"
		}
		return quoteAll(names)
	}
	cands := offered
	of := ""
	if w.Engine != "" {
		cands = keep(cands, func(c Caps) bool { return c.Name == w.Engine })
		if len(cands) == 0 {
			return job.Errorf(job.CodeUnsupported, "no gpu-node runs the engine %q; on offer: %s", w.Engine, list(names(offered)))
		}
		of = " with the " + w.Engine + " engine"
	}
	if w.Model != "" {
		named := cands
		cands = keep(cands, func(c Caps) bool { return slices.Contains(c.Models, w.Model) })
		if len(cands) == 0 {
			var models []string
			for _, c := range named {
				models = append(models, c.Models...)
			}
			return job.Errorf(job.CodeUnsupported, "no gpu-node%s offers the model %q; on offer: %s", of, w.Model, list(models))
		}
	}
	if w.Task == Translate {
		cands = keep(cands, func(c Caps) bool { return c.Translate })
		if len(cands) == 0 {
			return job.Errorf(job.CodeUnsupported, "no gpu-node%s can translate; engines on offer that can: %s",
				of, quoteAll(names(keep(offered, func(c Caps) bool { return c.Translate }))))
		}
	}
	if w.Prompt {
		cands = keep(cands, func(c Caps) bool { return c.Prompt })
		if len(cands) == 0 {
			return job.Errorf(job.CodeUnsupported, "no gpu-node%s takes a prompt; engines on offer that do: %s",
				of, quoteAll(names(keep(offered, func(c Caps) bool { return c.Prompt }))))
		}
	}
	if w.Speakers {
		cands = keep(cands, func(c Caps) bool { return c.Speakers })
		if len(cands) == 0 {
			return job.Errorf(job.CodeUnsupported, "no gpu-node%s labels speakers; engines on offer that do: %s",
				of, quoteAll(names(keep(offered, func(c Caps) bool { return c.Speakers }))))
		}
	}
	if !slices.ContainsFunc(cands, func(c Caps) bool { return c.speaks(w.Language) }) {
		var langs []string
		for _, c := range cands {
			langs = append(langs, c.Languages...)
		}
		return job.Errorf(job.CodeUnsupported, "no gpu-node%s recognises %q with these options; languages on offer: %s", of, w.Language, quoteAll(langs))
	}
	return nil
}

func keep(cs []Caps, f func(Caps) bool) []Caps {
	var out []Caps
	for _, c := range cs {
		if f(c) {
			out = append(out, c)
		}
	}
	return out
}

func names(cs []Caps) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// quoteAll lists names for an error message: sorted, quoted, once each, at most
// 20.
func quoteAll(names []string) string {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return "none"
	}
	more := ""
	if len(names) > 20 {
		more = fmt.Sprintf(" and %d more", len(names)-20)
		names = names[:20]
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return strings.Join(quoted, ", ") + more
}
