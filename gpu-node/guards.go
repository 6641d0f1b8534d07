package agent

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/gpu-node/internal/guard"
	"github.com/ytcaption/ytcaption/gpu-node/internal/vocab"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// filter is what a job's segments pass between the engine and core: the
// hallucination guards, then the vocabulary's spellings. It runs here, not
// in an adapter or in core, so that every engine's output passes it, on the
// very audio the engine heard.
type filter struct {
	guard   *guard.Guard
	fix     *vocab.Fixer
	counted *prometheus.CounterVec // nil: no metrics
}

// guardMetric counts what the guards removed, by guard and action.
func guardMetric() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ytcaption_gpu_node_guard_segments_total",
		Help: "Segments the hallucination guards changed: guard silence or repetition; action dropped (the segment) or trimmed (a looping run collapsed).",
	}, []string{"guard", "action"})
}

// newFilter builds the filter of t's job. The silence guard maps the audio's
// speech first; when the audio cannot be read for it the guard is skipped,
// not the job (the engine reads the same file and reports its own error).
func (a *Agent) newFilter(ctx context.Context, t *task) *filter {
	opts := guard.Options{Silence: t.asg.GetSilenceGuard(), Repetition: t.asg.GetRepetitionGuard()}
	var speech *guard.Speech
	if opts.Silence {
		var err error
		if speech, err = guard.DetectSpeech(t.audio); err != nil {
			t.log.WarnContext(ctx, "silence guard skipped", "err", err)
		}
	}
	return &filter{guard: guard.New(opts, speech), fix: vocab.New(t.asg.GetVocabulary()), counted: a.guardSegments}
}

// apply returns the segment to push, or false when a guard dropped it.
func (f *filter) apply(s engine.Segment) (engine.Segment, bool) {
	before := f.guard.Report()
	s, dropped := f.guard.Apply(s)
	if f.counted != nil {
		after := f.guard.Report()
		if dropped != guard.Kept {
			f.counted.WithLabelValues(string(dropped), "dropped").Inc()
		}
		if after.RepetitionTrimmed > before.RepetitionTrimmed {
			f.counted.WithLabelValues(string(guard.DroppedRepeat), "trimmed").Inc()
		}
	}
	if dropped != guard.Kept {
		return s, false
	}
	if !f.fix.Empty() {
		s.Text = f.fix.Text(s.Text)
		if len(s.Words) > 0 {
			texts := make([]string, len(s.Words))
			for i, w := range s.Words {
				texts[i] = w.Text
			}
			for i, w := range f.fix.Words(texts) {
				s.Words[i].Text = w
			}
		}
	}
	return s, true
}

// report is what the guards removed, for CompleteJob.
func (f *filter) report() *ytcaptionv1.Guards {
	if f == nil {
		return nil
	}
	r := f.guard.Report()
	return &ytcaptionv1.Guards{SilenceDropped: int32(r.SilenceDropped), RepetitionDropped: int32(r.RepetitionDropped),
		RepetitionTrimmed: int32(r.RepetitionTrimmed)}
}

// prompt is the prompt an engine that reads one is given: the job's, then
// its vocabulary. An engine that reads none gets none (sphinx refuses one).
func (a *Agent) prompt(asg *ytcaptionv1.Assignment) string {
	if !a.eng.Capabilities().Prompt {
		return ""
	}
	return strings.TrimSpace(vocab.Prompt(asg.GetPrompt(), asg.GetVocabulary()))
}
