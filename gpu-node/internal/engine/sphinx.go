package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/proc"
)

// SphinxConfig configures pocketsphinx.
type SphinxConfig struct {
	Binary        string        // default "pocketsphinx_continuous"
	HMM, LM, Dict string        // empty: the binary's built-in en-us model
	Grace         time.Duration // SIGTERM to SIGKILL on cancel; default 2 s
}

// Sphinx runs pocketsphinx_continuous, the CPU engine of the dev stack and CI.
type Sphinx struct{ cfg SphinxConfig }

// NewSphinx returns the pocketsphinx adapter.
func NewSphinx(cfg SphinxConfig) *Sphinx {
	if cfg.Binary == "" {
		cfg.Binary = "pocketsphinx_continuous"
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Second
	}
	return &Sphinx{cfg: cfg}
}

// Name implements Engine.
func (s *Sphinx) Name() string { return "sphinx" }

// Models names the one acoustic model it runs, for core's fleet registry:
// the -hmm directory's name, or the binary's built-in "en-us".
func (s *Sphinx) Models() []string {
	if s.cfg.HMM != "" {
		return []string{filepath.Base(s.cfg.HMM)}
	}
	return []string{"en-us"}
}

// Capabilities implements Engine: its English model only, no translation,
// and no prompt (it has no way to read one). Transcribe refuses the rest.
func (s *Sphinx) Capabilities() Capabilities {
	return Capabilities{Models: s.Models(), Languages: []string{"en"}}
}

// Transcribe runs pocketsphinx over the file and emits a segment per utterance
// as pocketsphinx finishes it (it flushes after each).
func (s *Sphinx) Transcribe(ctx context.Context, req Request, emit func(Segment) error) (Result, error) {
	switch strings.ToLower(req.Language) {
	case "", "auto", "en":
	default:
		return Result{}, fmt.Errorf("%w: pocketsphinx has an English model only, not %q", ErrUnsupported, req.Language)
	}
	if req.translating() {
		return Result{}, fmt.Errorf("%w: pocketsphinx cannot translate", ErrUnsupported)
	}
	args := []string{"-infile", req.AudioPath, "-time", "yes"}
	for _, kv := range [][2]string{{"-hmm", s.cfg.HMM}, {"-lm", s.cfg.LM}, {"-dict", s.cfg.Dict}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := proc.Command(runCtx, s.cfg.Grace, s.cfg.Binary, args...)
	stderr := &tail{max: 4096}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, err
	}
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start pocketsphinx: %w", err)
	}
	perr := ParseSphinx(out, emit)
	if perr != nil {
		cancel() // emit refused: stop the engine rather than let it run on
		_, _ = io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return Result{}, ctx.Err()
	case perr != nil:
		return Result{}, perr
	case werr != nil:
		return Result{}, fmt.Errorf("pocketsphinx: %w: %s", werr, stderr.String())
	}
	return Result{Language: "en"}, nil
}

// ParseSphinx reads pocketsphinx_continuous -time yes output: per utterance a
// hypothesis line, then "token start end probability" lines in seconds from
// the start of the file, ending with "</s>".
func ParseSphinx(r io.Reader, emit func(Segment) error) error {
	sc := bufio.NewScanner(r)
	var cur *Segment
	flush := func() error {
		defer func() { cur = nil }()
		if cur == nil || len(cur.Words) == 0 {
			return nil
		}
		texts := make([]string, len(cur.Words))
		for i, w := range cur.Words {
			texts[i] = w.Text
		}
		cur.Text = strings.Join(texts, " ")
		cur.StartMS, cur.EndMS = cur.Words[0].StartMS, cur.Words[len(cur.Words)-1].EndMS
		return emit(*cur)
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue // a hypothesis line: the timed tokens that follow are what we use
		}
		start, err1 := strconv.ParseFloat(f[1], 64)
		end, err2 := strconv.ParseFloat(f[2], 64)
		p, err3 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue // a four-word hypothesis, not a token line
		}
		tok := f[0]
		switch {
		case tok == "<s>":
			if err := flush(); err != nil {
				return err
			}
			cur = &Segment{}
			continue
		case tok == "</s>":
			if err := flush(); err != nil {
				return err
			}
			continue
		case tok == "<sil>" || strings.HasPrefix(tok, "[") || strings.HasPrefix(tok, "++") || strings.HasPrefix(tok, "<"):
			continue // silence, noise and fillers
		}
		if i := strings.IndexByte(tok, '('); i > 0 {
			tok = tok[:i] // "was(2)": an alternate pronunciation of "was"
		}
		if cur == nil {
			cur = &Segment{}
		}
		cur.Words = append(cur.Words, Word{
			StartMS: int64(start*1000 + 0.5), EndMS: int64(end*1000 + 0.5), Text: tok, Probability: float32(min(max(p, 0), 1)),
		})
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("read pocketsphinx output: %w", err)
	}
	return flush()
}
