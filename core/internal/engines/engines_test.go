package engines

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// What the gpu-node's adapters advertise today (gpu-node/internal/engine);
// core itself knows none of this.
var (
	sphinx     = Caps{Name: "sphinx", Models: []string{"en-us"}, Languages: []string{"en"}}
	whispercpp = Caps{Name: "whispercpp", Models: []string{"base.en", "large-v3"}, Translate: true, Prompt: true}
	diarizing  = Caps{Name: "openai", Models: []string{"gpt-4o-transcribe-diarize"}, Speakers: true}
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		offered []Caps
		want    Want
		code    string // "" for none
		message string // a part of the refusal: what is on offer
	}{
		{"plain job, nobody seen", nil, Want{Language: "auto", Task: Transcribe}, "", ""},
		{"options, nobody seen: the queue waits", nil, Want{Language: "de", Task: Translate, Prompt: true}, "", ""},
		{"named engine, nobody seen", nil, Want{Engine: "sphinx", Language: "auto", Task: Transcribe}, job.CodeUnsupported, "none (no gpu-node has called in lately)"},
		{"english on sphinx", []Caps{sphinx}, Want{Language: "en", Task: Transcribe}, "", ""},
		{"german on sphinx only", []Caps{sphinx}, Want{Language: "de", Task: Transcribe}, job.CodeUnsupported, `languages on offer: "en"`},
		{"translation on sphinx only", []Caps{sphinx}, Want{Language: "auto", Task: Translate}, job.CodeUnsupported, "engines on offer that can: none"},
		{"prompt on sphinx only", []Caps{sphinx}, Want{Language: "en", Task: Transcribe, Prompt: true}, job.CodeUnsupported, "engines on offer that do: none"},
		{"german translation, some engine can", []Caps{sphinx, whispercpp}, Want{Language: "de", Task: Translate, Prompt: true}, "", ""},
		{"sphinx named, whispercpp translates", []Caps{sphinx, whispercpp}, Want{Engine: "sphinx", Language: "en", Task: Translate}, job.CodeUnsupported, `no gpu-node with the sphinx engine can translate; engines on offer that can: "whispercpp"`},
		{"unknown engine", []Caps{sphinx, whispercpp}, Want{Engine: "openai", Language: "auto", Task: Transcribe}, job.CodeUnsupported, `on offer: "sphinx", "whispercpp"`},
		{"model of the named engine", []Caps{sphinx, whispercpp}, Want{Engine: "whispercpp", Model: "large-v3", Language: "ja", Task: Translate, Prompt: true}, "", ""},
		{"model of another engine", []Caps{sphinx, whispercpp}, Want{Engine: "sphinx", Model: "large-v3", Language: "auto", Task: Transcribe}, job.CodeUnsupported, `on offer: "en-us"`},
		{"a model names its engine's caps", []Caps{sphinx, whispercpp}, Want{Model: "en-us", Language: "auto", Task: Translate}, job.CodeUnsupported, "can translate"},
		{"an engine we never heard of, advertised", []Caps{{Name: "my-own", Languages: []string{"xx"}, Translate: true}}, Want{Engine: "my-own", Language: "xx", Task: Translate}, "", ""},
		{"unknown task", []Caps{whispercpp}, Want{Language: "en", Task: "summarise"}, job.CodeInvalidArgument, "task must be"},
		{"speakers, nobody seen: the queue waits", nil, Want{Language: "auto", Task: Transcribe, Speakers: true}, "", ""},
		{"speakers, no engine labels them", []Caps{sphinx, whispercpp}, Want{Language: "auto", Task: Transcribe, Speakers: true}, job.CodeUnsupported, "labels speakers; engines on offer that do: none"},
		{"speakers on the named engine only elsewhere", []Caps{whispercpp, diarizing}, Want{Engine: "whispercpp", Language: "en", Task: Transcribe, Speakers: true}, job.CodeUnsupported, `no gpu-node with the whispercpp engine labels speakers; engines on offer that do: "openai"`},
		{"speakers by a diarizing openai server", []Caps{sphinx, diarizing}, Want{Language: "de", Task: Transcribe, Speakers: true}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tc.offered, tc.want)
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tc.code, job.CodeOf(err), "%v", err)
			require.Contains(t, err.Error(), tc.message)
		})
	}
}
