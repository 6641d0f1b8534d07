package agent

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
)

// inventingEngine is a stand-in for a Whisper-class engine that hallucinates:
// it returns pocketsphinx's real segments of the clip, but lets the end of
// the first one loop, then repeats it whole, and invents a sentence after the
// audio has ended. It reads a prompt, and records it.
type inventingEngine struct {
	real   engine.Engine
	mu     sync.Mutex
	prompt string
	vocab  []string
}

func (e *inventingEngine) Name() string { return "openai" }
func (e *inventingEngine) Capabilities() engine.Capabilities {
	return engine.Capabilities{Prompt: true}
}

func (e *inventingEngine) Transcribe(ctx context.Context, req engine.Request, emit func(engine.Segment) error) (engine.Result, error) {
	e.mu.Lock()
	e.prompt, e.vocab = req.Prompt, req.Vocabulary
	e.mu.Unlock()
	var segs []engine.Segment
	res, err := e.real.Transcribe(ctx, engine.Request{AudioPath: req.AudioPath, Language: req.Language}, func(s engine.Segment) error {
		segs = append(segs, s)
		return nil
	})
	if err != nil || len(segs) == 0 {
		return res, err
	}
	// The first segment with its last four words looping, then again whole.
	loop := segs[0]
	words := strings.Fields(loop.Text)
	loop.Text += strings.Repeat(" "+strings.Join(words[max(0, len(words)-4):], " "), 5)
	out := append([]engine.Segment{loop, segs[0]}, segs[1:]...)
	out = append(out, engine.Segment{StartMS: 9000, EndMS: 11000, Text: "Thank you for watching."})
	for _, s := range out {
		if err := emit(s); err != nil {
			return res, err
		}
	}
	return res, nil
}

// TestAgentGuardsAndVocabulary: the segments the node pushes are the real
// ones — the repeat, the loop and the sentence invented past the end of the
// audio removed — spelled as the job's vocabulary says; the engine got the
// vocabulary after the job's prompt; CompleteJob and the metrics say what the
// guards removed.
func TestAgentGuardsAndVocabulary(t *testing.T) {
	t.Parallel()
	asg := assignment("sense_and_sensibility_01_austen_64kb-0870.wav")
	asg.SilenceGuard, asg.RepetitionGuard = true, true
	asg.Prompt, asg.Vocabulary = "A novel.", []string{"Mr John", "Leisure"}
	f := newFakeCore(asg)
	reg := prometheus.NewRegistry()
	eng := &inventingEngine{real: engine.NewSphinx(engine.SphinxConfig{})}
	run(t, f, eng, withMetrics(reg))

	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotNil(t, f.completed, "failed: %v", f.failed)
	var texts []string
	for i, s := range f.segments {
		require.Equal(t, int32(i), s.GetSeq(), "seq 0..n-1 without gaps: dropped segments leave none")
		texts = append(texts, s.GetText())
	}
	all := strings.Join(texts, " ")
	require.Contains(t, all, "Mr John")
	require.Contains(t, all, "Leisure")
	require.NotContains(t, strings.ToLower(all), "thank you")
	require.Equal(t, 1, strings.Count(all, "Mr John"), "the loop and the repeat are gone: %q", all)
	require.Equal(t, int32(len(f.segments)), f.completed.GetSegmentCount())
	g := f.completed.GetGuards()
	require.Equal(t, []int32{1, 1, 1}, []int32{g.GetSilenceDropped(), g.GetRepetitionDropped(), g.GetRepetitionTrimmed()})
	for _, w := range f.segments[0].GetWords() {
		require.NotEqual(t, "leisure", w.GetText(), "words are spelled too")
	}
	eng.mu.Lock()
	require.Equal(t, "A novel. Mr John, Leisure.", eng.prompt)
	require.Equal(t, []string{"Mr John", "Leisure"}, eng.vocab, "the terms apart too, for engines with hotwords")
	eng.mu.Unlock()

	families, err := reg.Gather()
	require.NoError(t, err)
	counts := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != "ytcaption_gpu_node_guard_segments_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			counts[strings.TrimSpace(key)] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, map[string]float64{"action=dropped guard=silence": 1, "action=dropped guard=repetition": 1,
		"action=trimmed guard=repetition": 1}, counts)
}
