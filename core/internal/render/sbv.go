package render

import (
	"bytes"
	"fmt"
	"time"
)

// sbvTime is SubViewer's time as YouTube writes it: 0:00:01.250 (hours
// without padding).
func sbvTime(d time.Duration) string {
	total := max(d, 0).Milliseconds()
	return fmt.Sprintf("%d:%02d:%02d.%03d", total/3600000, total/60000%60, total/1000%60, total%1000)
}

// sbv is YouTube's SubViewer format, which YouTube Studio takes as an
// upload: a "start,end" line, the cue's lines, a blank line. A change of
// speaker is marked ">> Name: " as YouTube's own captions do.
func sbv(cues []Cue) []byte {
	var b bytes.Buffer
	prev := ""
	for _, c := range cues {
		fmt.Fprintf(&b, "%s,%s\n", sbvTime(c.Start), sbvTime(c.End))
		s := cueSpeaker(c)
		for i, l := range c.Lines {
			if i == 0 && s != "" && s != prev {
				b.WriteString(">> " + s + ": ")
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
		prev = s
		b.WriteByte('\n')
	}
	return b.Bytes()
}
