package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"

	"github.com/ytcaption/ytcaption/core/internal/job"
)

// langPattern is xs:language, which xml:lang must match (or be empty).
var langPattern = regexp.MustCompile(`^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$`)

// langTag is the transcript's language if it is a well-formed tag, else "".
func langTag(l string) string {
	if langPattern.MatchString(l) {
		return l
	}
	return ""
}

func xmlText(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}

// ttml is a TTML document of the IMSC1 Text Profile (W3C's profile for
// broadcast and streaming captions): one region across the bottom, white
// sans-serif text on a dark box, a p per cue with its lines split by br, and
// clock times of milliseconds. Cues are in order and each element refers
// only to what came before, so the document says it is progressively
// decodable. A speaker becomes a ttm:agent, declared in the head and named
// on the p.
func ttml(t job.Transcript, cues []Cue) []byte {
	speakers := make([]string, len(cues))
	for i, c := range cues {
		speakers[i] = cueSpeaker(c)
	}
	return ttmlDoc(langTag(t.Language), cues, speakers)
}

func ttmlDoc(lang string, cues []Cue, speakers []string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"` +
		` xmlns:tts="http://www.w3.org/ns/ttml#styling" xmlns:ttm="http://www.w3.org/ns/ttml#metadata"` +
		` xmlns:ittp="http://www.w3.org/ns/ttml/profile/imsc1#parameter"` +
		` ttp:profile="http://www.w3.org/ns/ttml/profile/imsc1/text" ttp:timeBase="media"` +
		` ittp:progressivelyDecodable="true" xml:lang="`)
	xmlText(&b, lang)
	b.WriteString("\">\n  <head>\n")
	agents := map[string]string{}
	for _, s := range speakers {
		if s == "" || agents[s] != "" {
			continue
		}
		agents[s] = fmt.Sprintf("speaker%d", len(agents)+1)
		fmt.Fprintf(&b, `    <ttm:agent xml:id="%s" type="person"><ttm:name type="full">`, agents[s])
		xmlText(&b, s)
		b.WriteString("</ttm:name></ttm:agent>\n")
	}
	b.WriteString(`    <styling>
      <style xml:id="caption" tts:fontFamily="proportionalSansSerif" tts:fontSize="100%" tts:lineHeight="125%" tts:textAlign="center" tts:color="white"/>
      <style xml:id="box" tts:backgroundColor="rgba(0,0,0,204)"/>
    </styling>
    <layout>
      <region xml:id="bottom" tts:origin="10% 10%" tts:extent="80% 80%" tts:displayAlign="after"/>
    </layout>
  </head>
  <body region="bottom" style="caption">
    <div>
`)
	for i, c := range cues {
		fmt.Fprintf(&b, `      <p xml:id="c%d" begin="%s" end="%s"`, i+1, timestamp(c.Start, '.'), timestamp(c.End, '.'))
		if id := agents[speakers[i]]; id != "" {
			fmt.Fprintf(&b, ` ttm:agent="%s"`, id)
		}
		b.WriteString(`><span style="box">`)
		for k, l := range c.Lines {
			if k > 0 {
				b.WriteString("<br/>")
			}
			xmlText(&b, l)
		}
		b.WriteString("</span></p>\n")
	}
	b.WriteString("    </div>\n  </body>\n</tt>\n")
	return b.Bytes()
}
