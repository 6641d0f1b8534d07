package devstack

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type sseEvent struct{ id, event, data string }

// sseStream reads Server-Sent Events from one connection.
type sseStream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openEvents(t *testing.T, s testStack, jobID, lastEventID string) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.EdgeURL+"/v1/jobs/"+jobID+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	return &sseStream{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event, or false at the end of the stream.
func (s *sseStream) next() (sseEvent, bool) {
	var e sseEvent
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && e.event != "":
			return e, true
		case strings.HasPrefix(line, "id: "):
			e.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			e.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			e.data = line[6:]
		}
	}
	return e, false
}

// TestLiveEventsStreamSegmentsAndResume follows a long transcription over
// SSE: segments arrive while the job is still transcribing, a reconnect with
// Last-Event-ID continues without a gap or a repeat, and the stream ends at
// the terminal state.
func TestLiveEventsStreamSegmentsAndResume(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	media, _ := mediaServer(t)
	c := client{t: t, base: s.EdgeURL, key: s.APIKey}
	j := c.create(media + "/long.ogg")

	var seqs []int
	var texts []string
	liveSegment := false // a segment event followed by a job event still transcribing
	read := func(st *sseStream, wantSegments int) (lastID, lastStatus string) {
		for {
			e, ok := st.next()
			if !ok {
				return lastID, lastStatus
			}
			lastID = e.id
			switch e.event {
			case "segment":
				var sg struct {
					Seq  int
					Text string
				}
				require.NoError(t, json.Unmarshal([]byte(e.data), &sg), e.data)
				seqs, texts = append(seqs, sg.Seq), append(texts, sg.Text)
			case "job":
				var jj jobJSON
				require.NoError(t, json.Unmarshal([]byte(e.data), &jj), e.data)
				lastStatus = jj.Status
				if jj.Status == "transcribing" && len(seqs) > 0 {
					liveSegment = true
				}
			}
			if wantSegments > 0 && len(seqs) >= wantSegments && lastStatus == "transcribing" {
				return lastID, lastStatus
			}
		}
	}

	first := openEvents(t, s, j.ID, "")
	lastID, status := read(first, 2)
	first.resp.Body.Close() // the client drops the connection mid-job
	require.Equal(t, "transcribing", status)
	require.GreaterOrEqual(t, len(seqs), 2)

	second := openEvents(t, s, j.ID, lastID)
	_, status = read(second, len(seqs)+2)
	require.Equal(t, "transcribing", status)
	code, body := c.do("DELETE", "/v1/jobs/"+j.ID, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	done := make(chan string, 1)
	go func() { _, st := read(second, 0); done <- st }()
	select {
	case st := <-done:
		require.Equal(t, "cancelled", st, "the stream ends with the terminal state")
	case <-time.After(30 * time.Second):
		t.Fatal("the event stream did not end after the job was cancelled")
	}
	second.resp.Body.Close()

	require.True(t, liveSegment, "segments arrive before the job finishes")
	for i, q := range seqs {
		require.Equal(t, i, q, "segments across the reconnect: no gap, no repeat (%v)", seqs)
	}
	// What streamed is what the transcript holds.
	code, body = c.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=json", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var tr struct{ Segments []struct{ Text string } }
	require.NoError(t, json.Unmarshal(body, &tr))
	require.GreaterOrEqual(t, len(tr.Segments), len(texts))
	for i, text := range texts {
		require.Equal(t, strings.TrimSpace(text), strings.TrimSpace(tr.Segments[i].Text))
	}
}
