package eval

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/clocktest"
)

// looper recognises each clip as its reference, then loops its last three
// words and says "thank you" after the audio has ended: what each guard
// removes shows in its column.
type looper struct{ ref string }

func (looper) Name() string                      { return "looper" }
func (looper) Capabilities() engine.Capabilities { return engine.Capabilities{} }
func (l looper) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	ref := l.ref
	words := strings.Fields(ref)
	tail := " " + strings.Join(words[len(words)-3:], " ")
	end := req.Duration.Milliseconds()
	if err := emit(engine.Segment{StartMS: 0, EndMS: end, Text: ref + strings.Repeat(tail, 4)}); err != nil {
		return engine.Result{}, err
	}
	return engine.Result{}, emit(engine.Segment{StartMS: end + 1000, EndMS: end + 3000, Text: "thank you"})
}

func TestGuardColumns(t *testing.T) {
	items, err := Load(librivox)
	require.NoError(t, err)
	items = items[:1]
	rep, err := run(context.Background(), clocktest.New().Now, looper{ref: items[0].Reference}, "ffmpeg", items, nil)
	require.NoError(t, err)
	row := rep.Rows[0]
	require.Equal(t, 3*4+2, row.Errors, "the loop's twelve words and thank you are insertions")
	require.Equal(t, []int{12, 2, 0}, row.GuardedErrors, "silence drops thank you; repetition the loop; both, everything invented")
	var b strings.Builder
	rep.WriteTable(&b)
	require.Contains(t, b.String(), "+silence")
	require.Contains(t, b.String(), "+both")
}
