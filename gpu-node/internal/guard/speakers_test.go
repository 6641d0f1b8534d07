package guard

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
)

// TestRepeatsAreOneSpeakers: in a diarized transcript another speaker
// saying the same sentence is dialogue and is kept; the same speaker saying
// it again is still a loop.
func TestRepeatsAreOneSpeakers(t *testing.T) {
	t.Parallel()
	g := New(Options{Repetition: true}, nil)
	var kept []string
	for _, s := range []engine.Segment{
		{Text: "We went to the market.", Speaker: "Speaker 1"},
		{Text: "We went to the market?", Speaker: "Speaker 2"},
		{Text: "We went to the market.", Speaker: "Speaker 1"},
		{Text: "We went to the market.", Speaker: "Speaker 1"},
		{Text: "Yes.", Speaker: "Speaker 2"},
		{Text: "Yes.", Speaker: "Speaker 1"},
		{Text: "Yes.", Speaker: "Speaker 2"},
	} {
		s.EndMS = 1000
		if out, d := g.Apply(s); d == Kept {
			kept = append(kept, out.Speaker+": "+out.Text)
		}
	}
	require.Equal(t, []string{
		"Speaker 1: We went to the market.", "Speaker 2: We went to the market?", "Speaker 1: We went to the market.",
		"Speaker 2: Yes.", "Speaker 1: Yes.", "Speaker 2: Yes.",
	}, kept)
	require.Equal(t, Report{RepetitionDropped: 1}, g.Report())
}
