package render

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// TestJSONSaysWhatTheGuardsRemoved: the JSON transcript carries the guards
// that ran and their counts, and nothing when none ran.
func TestJSONSaysWhatTheGuardsRemoved(t *testing.T) {
	t.Parallel()
	tr := job.Transcript{JobID: "j", Language: "en", Segments: []job.Segment{{StartMS: 0, EndMS: 1000, Text: "hello"}}}
	doc := func() map[string]any {
		b, err := Render(JSON, tr, Options{})
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	require.NotContains(t, doc(), "guards")
	tr.Guards = &job.Guards{Silence: true, Repetition: true, GuardCounts: job.GuardCounts{SilenceDropped: 3, RepetitionDropped: 1, RepetitionTrimmed: 2}}
	require.Equal(t, map[string]any{"silence": true, "repetition": true, "silence_dropped": 3.0, "repetition_dropped": 1.0, "repetition_trimmed": 2.0},
		doc()["guards"])
}
