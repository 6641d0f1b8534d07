package eval

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/internal/clocktest"
)

const librivox = "/usr/share/pocketsphinx/test/data/librivox"

// TestOurWERAgreesWithSclite scores the same hypotheses — substitutions,
// deletions, insertions, an empty one, numbers — with wer and with NIST
// sclite (Debian's sctk).
func TestOurWERAgreesWithSclite(t *testing.T) {
	rows := []Row{
		{Item: Item{Reference: "and mister john dashwood had then leisure to consider"}, Hypothesis: "and mr john dashwood had the leisure to consider how"},
		{Item: Item{Reference: "he was not an ill disposed young man"}, Hypothesis: "he was not an illness closed young man"},
		{Item: Item{Reference: "the 3 sisters sat in 1905"}, Hypothesis: "the three sisters sat in nineteen oh five"},
		{Item: Item{Reference: "nothing was heard"}, Hypothesis: ""},
		{Item: Item{Reference: "a cold wind"}, Hypothesis: "a a cold cold wind wind"},
	}
	var rep Report
	for _, r := range rows {
		rep.Rows = append(rep.Rows, Score(r.Item, r.Hypothesis))
	}
	corpus := rep.Corpus()
	ours := corpus.Rate()
	theirs, err := Sclite(context.Background(), "sctk", rep.Rows)
	require.NoError(t, err, "install sctk (make deps)")
	require.InDelta(t, ours*100, theirs*100, 0.05, "ours %.4f, sclite %.4f", ours, theirs) // sclite prints one decimal
	require.Greater(t, ours, 0.2, "the cases have errors to count")
}

func TestLoadFindsReferences(t *testing.T) {
	items, err := Load(librivox)
	require.NoError(t, err, "install pocketsphinx-testdata (make deps)")
	require.GreaterOrEqual(t, len(items), 5)
	for _, it := range items {
		require.NotEmpty(t, it.Reference, it.Name)
		require.FileExists(t, it.Audio)
	}

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.flac"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("Hello, world.\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.wav"), []byte("x"), 0o644)) // no reference: skipped
	items, err = Load(dir)
	require.NoError(t, err)
	require.Equal(t, []Item{{Name: "a", Audio: filepath.Join(dir, "a.flac"), Reference: "Hello, world."}}, items)

	_, err = Load(t.TempDir())
	require.Error(t, err)
}

// echo "recognises" each clip as a fixed text, taking a fixed time on clock.
type echo struct {
	text  string
	clock *clocktest.Clock
}

func (echo) Name() string                      { return "echo" }
func (echo) Capabilities() engine.Capabilities { return engine.Capabilities{} }
func (e echo) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	e.clock.Advance(1500 * time.Millisecond)
	return engine.Result{}, emit(engine.Segment{Text: e.text})
}

func TestRunScoresEachFileAndTimesTheEngine(t *testing.T) {
	items, err := Load(librivox)
	require.NoError(t, err)
	items = items[:2]
	// The clock moves only inside the engine, so the engine time of each clip
	// is exactly 1.5 s, where a sleep gave only a lower bound.
	clock := clocktest.New()
	rep, err := run(context.Background(), clock.Now, echo{text: strings.ToUpper(items[0].Reference), clock: clock}, "ffmpeg", items, nil)
	require.NoError(t, err)
	require.Len(t, rep.Rows, 2)
	require.Zero(t, rep.Rows[0].WER(), "case does not count")
	require.Greater(t, rep.Rows[1].WER(), 0.5, "another clip's words")
	for _, r := range rep.Rows {
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", r.Audio).Output()
		require.NoError(t, err)
		want, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		require.NoError(t, err)
		require.InDelta(t, want, r.AudioTime.Seconds(), 0.01, "%s: the audio's own duration", r.Name)
		require.Equal(t, 1500*time.Millisecond, r.EngineTime, "%s: the engine's time only", r.Name)
	}
	require.False(t, math.IsNaN(rep.RTF()))
	require.Greater(t, rep.RTF(), 0.0)
	var b strings.Builder
	rep.WriteTable(&b)
	require.Contains(t, b.String(), "corpus")
}
