// Package engines says what each speech engine can do. Core uses it twice:
// to refuse at creation a job that no engine could serve (400, not a failed
// job an hour later), and to hand a job only to a gpu-node whose engine can
// serve it. The gpu-node's adapters (gpu-node/internal/engine) are the
// engines described here.
package engines

import (
	"slices"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// Caps is what an engine can do.
type Caps struct {
	Translate bool     // task "translate": speech in any language to English text
	Prompt    bool     // takes a prompt (spellings, context) to guide recognition
	Languages []string // the languages it recognises; empty: any
}

// Known are the engines the gpu-node has adapters for.
var Known = map[string]Caps{
	"sphinx":     {Languages: []string{"en"}}, // pocketsphinx with its en-us model
	"openai":     {Translate: true, Prompt: true},
	"whispercpp": {Translate: true, Prompt: true},
}

// Tasks a job may ask for.
const (
	Transcribe = "transcribe"
	Translate  = "translate"
)

// Check refuses a combination that engine (or, when it is "", every engine)
// cannot serve. An unknown engine name is for the nodes to judge: an operator
// may run engines this table does not know.
func Check(engine, language, task string, prompt bool) error {
	if task != Transcribe && task != Translate {
		return job.Errorf(job.CodeInvalidArgument, "task must be transcribe or translate, got %q", task)
	}
	if engine == "" {
		for _, c := range Known {
			if c.serves(language, task, prompt) {
				return nil
			}
		}
		return job.Errorf(job.CodeUnsupported, "no engine can %s %q with these options", task, language)
	}
	c, ok := Known[engine]
	switch {
	case !ok:
		return nil
	case task == Translate && !c.Translate:
		return job.Errorf(job.CodeUnsupported, "the %s engine cannot translate", engine)
	case prompt && !c.Prompt:
		return job.Errorf(job.CodeUnsupported, "the %s engine takes no prompt", engine)
	case !c.speaks(language):
		return job.Errorf(job.CodeUnsupported, "the %s engine does not recognise %q (it knows %v)", engine, language, c.Languages)
	}
	return nil
}

func (c Caps) speaks(language string) bool {
	return language == "auto" || len(c.Languages) == 0 || slices.Contains(c.Languages, language)
}

func (c Caps) serves(language, task string, prompt bool) bool {
	return c.speaks(language) && (task != Translate || c.Translate) && (!prompt || c.Prompt)
}

// Node is what a gpu-node running these engines can take, for the claim
// query: whether it translates, and the languages it recognises (nil: any).
func Node(names []string) (translate bool, languages []string) {
	anyLanguage := false
	for _, n := range names {
		c, ok := Known[n]
		if !ok { // an engine we do not know: trust the operator who runs it
			return true, nil
		}
		translate = translate || c.Translate
		if len(c.Languages) == 0 {
			anyLanguage = true
		}
		languages = append(languages, c.Languages...)
	}
	if anyLanguage {
		return translate, nil
	}
	return translate, languages
}
