// Package eval measures a speech engine on audio with reference transcripts:
// word error rate per file and over the corpus (after wer's normalisation of
// case, punctuation and numbers), and the real-time factor — engine time over
// audio time. It can cross-check its WER with NIST sclite on the same
// hypotheses, so our counting is known to agree with the field's tool. It
// also scores the same output through the hallucination guards (package
// guard), each alone and both, so a guard that costs WER shows.
package eval

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/gpu-node/internal/guard"
	"github.com/ytcaption/ytcaption/internal/wav"
	"github.com/ytcaption/ytcaption/internal/wer"
)

// Item is one audio file and what was said in it.
type Item struct {
	Name, Audio, Reference string
}

var (
	audioExts  = []string{".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"}
	sphinxLine = regexp.MustCompile(`^<s>\s*(.*?)\s*</s>\s*\((\S+)\)$`)
)

// Load finds the items in dir: audio files with a NAME.txt reference beside
// them, or references in a "transcription" file of lines "<s> text </s> (NAME)",
// as pocketsphinx-testdata ships them.
func Load(dir string) ([]Item, error) {
	refs := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(dir, "transcription")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if m := sphinxLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				refs[m[2]] = m[1]
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var items []Item
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || !slices.Contains(audioExts, strings.ToLower(ext)) {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ext)
		ref, ok := refs[name]
		if b, err := os.ReadFile(filepath.Join(dir, name+".txt")); err == nil {
			ref, ok = strings.TrimSpace(string(b)), true
		}
		if ok {
			items = append(items, Item{Name: name, Audio: filepath.Join(dir, e.Name()), Reference: ref})
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s holds no audio with a reference (NAME.txt beside NAME.wav, or a transcription file)", dir)
	}
	return items, nil
}

// Row is one file's result.
type Row struct {
	Item
	Hypothesis            string
	Errors, Words         int
	AudioTime, EngineTime time.Duration
	// GuardedErrors are the errors of the same output through each of
	// GuardSets, in order.
	GuardedErrors []int
}

// GuardSets are the guard settings a run scores besides none: each guard
// alone, then both, as a job has them by default.
var GuardSets = []struct {
	Name string
	guard.Options
}{
	{"silence", guard.Options{Silence: true}},
	{"repetition", guard.Options{Repetition: true}},
	{"both", guard.Options{Silence: true, Repetition: true}},
}

// guarded scores segs of it, read from audio, through each of GuardSets.
func guarded(it Item, audio string, segs []engine.Segment) ([]int, error) {
	speech, err := guard.DetectSpeech(audio)
	if err != nil {
		return nil, err
	}
	ref := wer.Words(it.Reference)
	var errs []int
	for _, set := range GuardSets {
		g := guard.New(set.Options, speech)
		var hyp []string
		for _, s := range segs {
			if kept, d := g.Apply(s); d == guard.Kept {
				hyp = append(hyp, kept.Text)
			}
		}
		errs = append(errs, wer.Errors(ref, wer.Words(strings.Join(hyp, " "))))
	}
	return errs, nil
}

// Score counts hyp's word errors against its reference.
func Score(it Item, hyp string) Row {
	ref := wer.Words(it.Reference)
	return Row{Item: it, Hypothesis: hyp, Errors: wer.Errors(ref, wer.Words(hyp)), Words: len(ref)}
}

// WER is the row's word error rate.
func (r Row) WER() float64 {
	if r.Words == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Words)
}

// Report is a whole run.
type Report struct {
	Engine string
	Rows   []Row
}

// Corpus is the WER over every file, each weighted by its reference length.
func (r Report) Corpus() wer.Corpus {
	var c wer.Corpus
	for _, row := range r.Rows {
		c.Errs += row.Errors
		c.Words += row.Words
	}
	return c
}

// GuardedCorpus is Corpus through GuardSets[i].
func (r Report) GuardedCorpus(i int) wer.Corpus {
	var c wer.Corpus
	for _, row := range r.Rows {
		if i < len(row.GuardedErrors) {
			c.Errs += row.GuardedErrors[i]
		}
		c.Words += row.Words
	}
	return c
}

// RTF is the corpus real-time factor: engine time over audio time.
func (r Report) RTF() float64 {
	var a, e time.Duration
	for _, row := range r.Rows {
		a += row.AudioTime
		e += row.EngineTime
	}
	if a == 0 {
		return 0
	}
	return e.Seconds() / a.Seconds()
}

// Run transcribes every item with eng. Audio is first made 16 kHz mono WAV
// with ffmpeg, as the download stage makes it; only the engine is timed.
func Run(ctx context.Context, eng engine.Engine, ffmpeg string, items []Item, progress io.Writer) (Report, error) {
	return run(ctx, time.Now, eng, ffmpeg, items, progress)
}

// run is Run with the clock that times the engine; tests stub it.
func run(ctx context.Context, now func() time.Time, eng engine.Engine, ffmpeg string, items []Item, progress io.Writer) (Report, error) {
	tmp, err := os.MkdirTemp("", "ytcaption-eval-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(tmp)
	rep := Report{Engine: eng.Name()}
	for i, it := range items {
		audioPath := filepath.Join(tmp, fmt.Sprintf("%d.wav", i))
		out, err := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", it.Audio,
			"-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le", audioPath).CombinedOutput()
		if err != nil {
			return rep, fmt.Errorf("%s: ffmpeg: %v: %s", it.Name, err, out)
		}
		audio, err := wav.Duration(audioPath)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", it.Name, err)
		}
		var hyp []string
		var segs []engine.Segment
		start := now()
		_, err = eng.Transcribe(ctx, engine.Request{AudioPath: audioPath, Language: "auto", Duration: audio}, func(s engine.Segment) error {
			hyp = append(hyp, s.Text)
			segs = append(segs, s)
			return nil
		})
		took := now().Sub(start)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", it.Name, err)
		}
		row := Score(it, strings.Join(hyp, " "))
		row.AudioTime, row.EngineTime = audio, took
		if row.GuardedErrors, err = guarded(it, audioPath, segs); err != nil {
			return rep, fmt.Errorf("%s: %w", it.Name, err)
		}
		rep.Rows = append(rep.Rows, row)
		if progress != nil {
			fmt.Fprintf(progress, "%s: WER %.3f\n", it.Name, row.WER())
		}
	}
	return rep, nil
}

// WriteTable prints the report: a row per file, then the corpus. WER is the
// engine's output as it is; the columns after RTF are its WER through each
// of GuardSets (a job's default is both).
func (r Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "engine %s\n%-48s %7s %12s %8s %8s %6s", r.Engine, "file", "WER", "errors/words", "audio s", "engine s", "RTF")
	for _, set := range GuardSets {
		fmt.Fprintf(w, " %11s", "+"+set.Name)
	}
	fmt.Fprintln(w)
	guardedWER := func(errs []int, words int) {
		for i := range GuardSets {
			if i < len(errs) && words > 0 {
				fmt.Fprintf(w, " %11.3f", float64(errs[i])/float64(words))
			} else {
				fmt.Fprintf(w, " %11s", "-")
			}
		}
		fmt.Fprintln(w)
	}
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%-48s %7.3f %5d/%-6d %8.2f %8.2f %6.3f", row.Name, row.WER(), row.Errors, row.Words,
			row.AudioTime.Seconds(), row.EngineTime.Seconds(), row.EngineTime.Seconds()/max(row.AudioTime.Seconds(), 1e-9))
		guardedWER(row.GuardedErrors, row.Words)
	}
	c := r.Corpus()
	fmt.Fprintf(w, "%-48s %7.3f %5d/%-6d %26s %6.3f", "corpus", c.Rate(), c.Errs, c.Words, "", r.RTF())
	var errs []int
	for i := range GuardSets {
		errs = append(errs, r.GuardedCorpus(i).Errs)
	}
	guardedWER(errs, c.Words)
}

// Sclite scores the report's hypotheses with NIST sclite (run as sctk, which
// is a command name Debian gives it) and returns its corpus WER. Both sides
// get wer's normalised words, so what is compared is the alignment and the
// counting.
func Sclite(ctx context.Context, sctk string, rows []Row) (float64, error) {
	dir, err := os.MkdirTemp("", "ytcaption-sclite-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	write := func(name string, text func(Row) string) error {
		var b strings.Builder
		for i, row := range rows {
			fmt.Fprintf(&b, "%s (spk_%d)\n", strings.Join(wer.Words(text(row)), " "), i)
		}
		return os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644)
	}
	if err := write("ref.trn", func(r Row) string { return r.Reference }); err != nil {
		return 0, err
	}
	if err := write("hyp.trn", func(r Row) string { return r.Hypothesis }); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, sctk, "sclite", "-r", "ref.trn", "trn", "-h", "hyp.trn", "trn", "-i", "rm", "-o", "sum", "stdout")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("sclite: %w", err)
	}
	// | Sum/Avg|    5  102 | 70.6 24.5  4.9  2.0 31.4 100.0 |: Err is the fifth figure.
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(strings.NewReplacer("|", " ").Replace(sc.Text())); len(f) >= 9 && f[0] == "Sum/Avg" {
			e, err := strconv.ParseFloat(f[7], 64)
			if err != nil {
				return 0, fmt.Errorf("sclite's summary %q: %w", sc.Text(), err)
			}
			return e / 100, nil
		}
	}
	return 0, fmt.Errorf("no Sum/Avg line in sclite's output:\n%s", out)
}
