package guard

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/ytcaption/ytcaption/internal/wav"
)

// An energy detector over 30 ms frames: cheap (one pass over the samples the
// node already has, no model), and enough to tell speech from the silence
// Whisper fills with "Thank you." or a repeated sentence. It does not tell
// music from speech; a server-side VAD (the openai engine's vad_filter) does
// better there.
const (
	frameMS      = 30
	frameSamples = wav.SampleRate * frameMS / 1000
	// hangMS of frames either side of a loud frame count as speech too: the
	// soft start and end of words, which an energy threshold misses.
	hangMS = 90
	// The threshold follows the recording's noise floor (its 10th percentile
	// frame, plus floorMarginDB), but is never below minThresholdDB — digital
	// silence would put it at the floor of the scale — nor above
	// maxThresholdDB, so speech with no pause at all is never judged silent.
	floorMarginDB  = 10
	minThresholdDB = -60
	maxThresholdDB = -35
	// A segment holds speech when at least minSpeechMS of it is speech, or
	// minSpeechShare of it: a real one-word segment is a few hundred
	// milliseconds of voice even when the engine's times stretch into the
	// pause after it.
	minSpeechMS    = 200
	minSpeechShare = 0.2
)

// Speech maps which stretches of a recording hold sound above its noise
// floor.
type Speech struct {
	speech []bool // per frame
}

// DetectSpeech reads a 16 kHz mono 16-bit WAV file and maps its speech.
func DetectSpeech(path string) (*Speech, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start, n, err := wav.FindData(f)
	if err != nil {
		return nil, fmt.Errorf("detect speech in %s: %w", path, err)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, err
	}
	return detect(bufio.NewReaderSize(io.LimitReader(f, n), 64<<10))
}

// detect reads samples and maps them.
func detect(r io.Reader) (*Speech, error) {
	var levels []float64 // dBFS per frame
	buf := make([]byte, frameSamples*wav.BytesPerSample)
	for {
		n, err := io.ReadFull(r, buf)
		if n >= wav.BytesPerSample {
			levels = append(levels, level(buf[:n&^1]))
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read audio: %w", err)
		}
	}
	return fromLevels(levels), nil
}

// level is the frame's RMS in dB below full scale; -120 for digital silence.
func level(b []byte) float64 {
	var sum float64
	for i := 0; i+1 < len(b); i += 2 {
		v := float64(int16(binary.LittleEndian.Uint16(b[i:])))
		sum += v * v
	}
	rms := math.Sqrt(sum/float64(len(b)/2)) / 32768
	if rms <= 1e-6 {
		return -120
	}
	return 20 * math.Log10(rms)
}

// Threshold is the level, in dBFS, above which a frame counts as speech.
func threshold(levels []float64) float64 {
	if len(levels) == 0 {
		return maxThresholdDB
	}
	sorted := slices.Clone(levels)
	slices.Sort(sorted)
	floor := sorted[len(sorted)/10]
	return min(max(floor+floorMarginDB, minThresholdDB), maxThresholdDB)
}

func fromLevels(levels []float64) *Speech {
	th := threshold(levels)
	s := &Speech{speech: make([]bool, len(levels))}
	hang := hangMS / frameMS
	for i, l := range levels {
		if l < th {
			continue
		}
		for k := max(0, i-hang); k <= min(len(levels)-1, i+hang); k++ {
			s.speech[k] = true
		}
	}
	return s
}

// SpeechMS is how many milliseconds of [startMS, endMS) are speech.
func (s *Speech) SpeechMS(startMS, endMS int64) int64 {
	var ms int64
	for i := max(0, startMS/frameMS); i < int64(len(s.speech)) && i*frameMS < endMS; i++ {
		if s.speech[i] {
			lo, hi := max(i*frameMS, startMS), min((i+1)*frameMS, endMS)
			ms += hi - lo
		}
	}
	return ms
}

// Holds says whether [startMS, endMS) holds enough speech to be a real
// segment (see minSpeechMS). Time past the end of the audio holds none.
func (s *Speech) Holds(startMS, endMS int64) bool {
	sp := s.SpeechMS(startMS, endMS)
	return sp >= minSpeechMS || float64(sp) >= minSpeechShare*float64(endMS-startMS)
}

// SpeechShare is the share of the recording that is speech, for logs.
func (s *Speech) SpeechShare() float64 {
	if len(s.speech) == 0 {
		return 0
	}
	n := 0
	for _, v := range s.speech {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(s.speech))
}
