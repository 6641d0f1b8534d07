package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	agent "github.com/ytcaption/ytcaption/gpu-node"
	"github.com/ytcaption/ytcaption/gpu-node/internal/engine"
	"github.com/ytcaption/ytcaption/gpu-node/internal/eval"
	"github.com/ytcaption/ytcaption/internal/envflag"
)

// engineFlags are the flags that choose and configure the speech engine,
// shared by the agent and eval.
func engineFlags(fs *flag.FlagSet, cfg *agent.Config) {
	fs.StringVar(&cfg.Engine, "engine", "sphinx", "speech engine: "+strings.Join(agent.Engines, ", "))
	fs.StringVar(&cfg.Sphinx.Binary, "sphinx-binary", "pocketsphinx_continuous", "pocketsphinx binary")
	fs.StringVar(&cfg.OpenAI.BaseURL, "openai-base-url", "", "base URL of an OpenAI-compatible transcription server")
	fs.StringVar(&cfg.OpenAI.APIKey, "openai-api-key", "", "API key for that server")
	fs.Func("openai-models", "models jobs may ask that server for, comma-separated, the first the default; no other name is forwarded (empty: --openai-model alone)",
		func(v string) error {
			cfg.OpenAI.Models = nil
			for _, m := range strings.Split(v, ",") {
				if m = strings.TrimSpace(m); m != "" {
					cfg.OpenAI.Models = append(cfg.OpenAI.Models, m)
				}
			}
			return nil
		})
	fs.StringVar(&cfg.OpenAI.Model, "openai-model", "whisper-1", "the one model to ask for when --openai-models is empty")
	fs.BoolVar(&cfg.OpenAI.Hotwords, "openai-hotwords", false, "send a job's vocabulary as the hotwords field too (speaches, faster-whisper-server: it then guides every 30 s window; OpenAI's own API refuses the field)")
	fs.BoolVar(&cfg.OpenAI.VADFilter, "openai-vad-filter", false, "send vad_filter=true for jobs with the silence guard on: the server skips non-speech before Whisper (speaches, faster-whisper-server; OpenAI's own API refuses the field)")
	fs.StringVar(&cfg.OpenAI.Diarize, "openai-diarize", "", "the server labels speakers, in this documented shape: \"openai\" (response_format=diarized_json, gpt-4o-transcribe-diarize) or \"whisperx\" (verbose_json with diarize=true, min_speakers, max_speakers and a speaker on segments and words); empty: it does not, and speakers jobs go to other nodes")
	fs.StringVar(&cfg.WhisperCPP.Binary, "whispercpp-binary", "whisper-cli", "whisper.cpp CLI binary")
	fs.StringVar(&cfg.WhisperCPP.ModelsDir, "whispercpp-models-dir", "", "directory of the whisper.cpp ggml models jobs may name (model base.en: ggml-base.en.bin there)")
	fs.StringVar(&cfg.WhisperCPP.Model, "whispercpp-model", "", "default whisper.cpp model, a name in --whispercpp-models-dir (a path to a model file: its directory, when --whispercpp-models-dir is empty)")
}

const evalSummary = `ytcaption-gpu-node eval measures the configured engine on audio with reference transcripts:
word error rate per file and over the corpus (case, punctuation and numbers normalised) and the
real-time factor (engine time / audio time). DIR holds audio files with NAME.txt references
beside them, or a pocketsphinx-style "transcription" file. --sclite cross-checks the corpus WER
with NIST sclite (Debian's sctk) on the same hypotheses.`

func evaluate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ytcaption-gpu-node eval", flag.ContinueOnError)
	var cfg agent.Config
	engineFlags(fs, &cfg)
	dir := fs.String("dir", "/usr/share/pocketsphinx/test/data/librivox", "audio files and their references")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg binary (makes every file 16 kHz mono WAV first)")
	sclite := fs.Bool("sclite", false, "cross-check the corpus WER with NIST sclite (sctk)")
	if err := envflag.ParseCommand(fs, "YTCAPTION_GPU_NODE", evalSummary, args, getenv, stdout); err != nil {
		return err
	}
	items, err := eval.Load(*dir)
	if err != nil {
		return err
	}
	eng, err := engine.New(cfg.EngineConfig())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rep, err := eval.Run(ctx, eng, *ffmpeg, items, nil)
	if err != nil {
		return err
	}
	rep.WriteTable(stdout)
	if *sclite {
		theirs, err := eval.Sclite(ctx, "sctk", rep.Rows)
		if err != nil {
			return err
		}
		c := rep.Corpus()
		fmt.Fprintf(stdout, "sclite corpus WER %.3f, ours %.3f\n", theirs, c.Rate())
		if d := c.Rate() - theirs; d > 0.0005 || d < -0.0005 { // sclite prints one decimal of a percentage
			return errors.New("our WER and sclite's disagree")
		}
	}
	return nil
}
