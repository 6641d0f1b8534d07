package rest

import (
	"fmt"
	"strings"
)

// OpenAI's response_format=diarized_json (gpt-4o-transcribe-diarize):
// segments of type transcript.text.segment, each one speaker's. A segment
// whose words two speakers share is split where the speaker changes, at
// its words' times. Speakers are ytcaption's labels ("Speaker 1"), where
// OpenAI's own API answers letters; clients treat either as a name.
type diarizedSegment struct {
	Type    string  `json:"type"`
	ID      string  `json:"id"`
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Text    string  `json:"text"`
	Speaker string  `json:"speaker"`
}

type diarizedTranscript struct {
	Task     string            `json:"task"`
	Duration float64           `json:"duration"`
	Text     string            `json:"text"`
	Segments []diarizedSegment `json:"segments"`
}

func diarized(t coreTranscript) diarizedTranscript {
	out := diarizedTranscript{Task: "transcribe", Duration: t.Duration, Text: t.Text, Segments: []diarizedSegment{}}
	add := func(start, end float64, text, speaker string) {
		out.Segments = append(out.Segments, diarizedSegment{Type: "transcript.text.segment", ID: fmt.Sprintf("seg_%d", len(out.Segments)),
			Start: start, End: end, Text: text, Speaker: speaker})
	}
	for _, sg := range t.Segments {
		split := false
		for _, w := range sg.Words {
			split = split || (w.Speaker != "" && w.Speaker != sg.Speaker)
		}
		if !split {
			add(sg.Start, sg.End, sg.Text, sg.Speaker)
			continue
		}
		first := len(out.Segments)
		for _, w := range sg.Words {
			speaker := w.Speaker
			if speaker == "" {
				speaker = sg.Speaker
			}
			word := strings.TrimSpace(w.Word)
			if n := len(out.Segments); n > first && out.Segments[n-1].Speaker == speaker {
				last := &out.Segments[n-1]
				last.Text, last.End = last.Text+" "+word, max(last.End, w.End)
				continue
			}
			add(w.Start, w.End, word, speaker)
		}
	}
	return out
}
