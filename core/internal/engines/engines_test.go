package engines

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		engine, lang, task string
		prompt             bool
		want               string // error code, "" for none
	}{
		{"", "auto", Transcribe, false, ""},
		{"", "de", Translate, true, ""}, // some engine can
		{"sphinx", "en", Transcribe, false, ""},
		{"sphinx", "auto", Transcribe, false, ""},
		{"sphinx", "de", Transcribe, false, job.CodeUnsupported},
		{"sphinx", "en", Translate, false, job.CodeUnsupported},
		{"sphinx", "en", Transcribe, true, job.CodeUnsupported},
		{"openai", "de", Translate, true, ""},
		{"whispercpp", "ja", Transcribe, true, ""},
		{"my-own-engine", "xx", Translate, true, ""}, // not ours to judge
		{"", "en", "summarise", false, job.CodeInvalidArgument},
	} {
		err := Check(tc.engine, tc.lang, tc.task, tc.prompt)
		if tc.want == "" {
			require.NoError(t, err, "%+v", tc)
		} else {
			require.Equal(t, tc.want, job.CodeOf(err), "%+v", tc)
		}
	}
}

func TestNode(t *testing.T) {
	t.Parallel()
	tr, langs := Node([]string{"sphinx"})
	require.False(t, tr)
	require.Equal(t, []string{"en"}, langs)
	tr, langs = Node([]string{"sphinx", "openai"})
	require.True(t, tr)
	require.Nil(t, langs, "any language")
	tr, langs = Node([]string{"custom"})
	require.True(t, tr)
	require.Nil(t, langs)
}
