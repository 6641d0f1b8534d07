package devstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// raw sends body as it is (not marshalled: a number JSON allows and Go's
// float64 cannot hold), with header h; it returns the status, the body and
// the reply's headers.
func (c client) raw(method, path string, body []byte, h map[string]string) (int, []byte, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b, resp.Header
}

type cueJSON struct {
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Text    string  `json:"text"`
	Speaker string  `json:"speaker,omitempty"`
}

// TestRevisionsAndAudioThroughTheEdge: a real job's transcript is edited
// through the edge — the edit is the latest revision in every format, the
// original stays revision 0, concurrent saves from one base make one
// revision, each bound is refused with invalid_transcript naming the cue,
// another user sees none of it — and its stored audio plays with Range
// requests relayed from MinIO.
func TestRevisionsAndAudioThroughTheEdge(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	media, refs := mediaServer(t)
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}
	j := api.create(media + "/" + firstClip(refs) + ".ogg")
	j = api.waitFor(j.ID, 3*time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status)
	base := "/v1/jobs/" + j.ID

	code, b := api.do("GET", base+"/transcript?format=json", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	var machine struct{ Segments []cueJSON }
	require.NoError(t, json.Unmarshal(b, &machine))
	require.NotEmpty(t, machine.Segments)
	_, original := api.do("GET", base+"/transcript?format=srt", nil)

	edited := append([]cueJSON(nil), machine.Segments...)
	edited[0].Text = "Edited by Alice"
	code, b = api.do("PUT", base+"/transcript", map[string]any{"base_revision": 0, "segments": edited})
	require.Equal(t, http.StatusOK, code, string(b))
	var r struct {
		Revision     int    `json:"revision"`
		CreatedAt    string `json:"created_at"`
		SegmentCount int    `json:"segment_count"`
	}
	require.NoError(t, json.Unmarshal(b, &r))
	require.Equal(t, 1, r.Revision)
	require.Equal(t, len(edited), r.SegmentCount)
	code, b = api.do("GET", base, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), `"revision":1`, "the job shows its latest revision at once")

	for _, f := range []string{"srt", "vtt", "txt", "json", "tsv", "ass", "ttml", "sbv"} {
		code, b = api.do("GET", base+"/transcript?format="+f, nil)
		require.Equal(t, http.StatusOK, code, f)
		require.Contains(t, string(b), "Edited by Alice", "%s serves the latest revision", f)
	}
	code, b = api.do("GET", base+"/transcript?format=srt&revision=0", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, string(original), string(b), "revision 0 is still the machine's")
	code, b = api.do("GET", base+"/transcript?revision=7", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "revision_not_found", errorCode(t, b))

	code, b = api.do("PUT", base+"/transcript", map[string]any{"base_revision": 0, "segments": edited})
	require.Equal(t, http.StatusConflict, code)
	require.Equal(t, "revision_conflict", errorCode(t, b))

	// Two tabs and a script save from revision 1 at once: one wins.
	const n = 5
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tab := append([]cueJSON(nil), edited...)
			tab[0].Text = fmt.Sprintf("Tab %d", i)
			codes[i], _ = api.do("PUT", base+"/transcript", map[string]any{"base_revision": 1, "segments": tab})
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		if c == http.StatusOK {
			won++
		} else {
			require.Equal(t, http.StatusConflict, c)
		}
	}
	require.Equal(t, 1, won, "%v", codes)

	// Each bound, with the attack it stops.
	many := make([]cueJSON, 20_001)
	for i := range many {
		many[i] = cueJSON{Start: float64(i), End: float64(i) + 0.5, Text: "x"}
	}
	manyBody, err := json.Marshal(map[string]any{"base_revision": 2, "segments": many})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, body, msg string
	}{
		{"a time past float64 (1e400), to poison the formats", `{"base_revision": 2, "segments": [{"start": 0, "end": 1}, {"start": 1e400, "end": 2, "text": "x"}]}`, "cue 1: start"},
		{"a negative time", `{"base_revision": 2, "segments": [{"start": -1, "end": 2, "text": "x"}]}`, "cue 0: start"},
		{"an end before the start", `{"base_revision": 2, "segments": [{"start": 3, "end": 2, "text": "x"}]}`, "cue 0: end"},
		{"a text of 2,001 characters", `{"base_revision": 2, "segments": [{"start": 0, "end": 2, "text": "` + strings.Repeat("a", 2001) + `"}]}`, "cue 0: text is 2001"},
		{"a forged SRT cue in a text", `{"base_revision": 2, "segments": [{"start": 0, "end": 2, "text": "a\n\n2\n00:00:00,000 --> 00:09:00,000\nforged"}]}`, "cue 0: text holds a control"},
		{"20,001 cues, to fill the database", string(manyBody), "at most 20000 cues"},
	} {
		code, b, _ := api.raw("PUT", base+"/transcript", []byte(tc.body), nil)
		require.Equal(t, http.StatusBadRequest, code, tc.name)
		require.Equal(t, "invalid_transcript", errorCode(t, b), tc.name)
		require.Contains(t, string(b), tc.msg, tc.name)
	}
	code, b = api.do("GET", base+"/revisions", nil)
	require.Equal(t, http.StatusOK, code, string(b))
	var revs struct {
		Revisions []struct{ Revision, SegmentCount int }
	}
	require.NoError(t, json.Unmarshal(b, &revs))
	require.Len(t, revs.Revisions, 3, "0, the first save and the one tab that won; no refused save left one")

	// The audio: whole, a range of it, and a range past its end.
	code, wav, h := api.raw("GET", base+"/audio", nil, nil)
	require.Equal(t, http.StatusOK, code, string(wav))
	require.Equal(t, "audio/wav", h.Get("Content-Type"))
	require.Equal(t, "bytes", h.Get("Accept-Ranges"))
	require.Equal(t, strconv.Itoa(len(wav)), h.Get("Content-Length"))
	require.Equal(t, "RIFF", string(wav[:4]))
	require.Greater(t, len(wav), 16_000, "a second of 16 kHz audio at least")
	code, part, h := api.raw("GET", base+"/audio", nil, map[string]string{"Range": "bytes=1000-1999"})
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, wav[1000:2000], part)
	require.Equal(t, fmt.Sprintf("bytes 1000-1999/%d", len(wav)), h.Get("Content-Range"))
	code, part, _ = api.raw("GET", base+"/audio", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(wav)-10)})
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, wav[len(wav)-10:], part, "an open range, to the end")
	code, b, _ = api.raw("GET", base+"/audio", nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(wav)+100)})
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, code, string(b))

	// Another user finds none of it.
	key, _ := newUser(t, api, "bob")
	bob := client{t: t, base: s.EdgeURL, key: key}
	for _, c := range []struct{ method, path string }{{"GET", base + "/audio"}, {"GET", base + "/revisions"}, {"GET", base + "/transcript?revision=1"}} {
		code, b := bob.do(c.method, c.path, nil)
		require.Equal(t, http.StatusNotFound, code, c.path)
		require.Equal(t, "not_found", errorCode(t, b), c.path)
	}
	code, b = bob.do("PUT", base+"/transcript", map[string]any{"base_revision": 2, "segments": edited})
	require.Equal(t, http.StatusNotFound, code, string(b))
}
