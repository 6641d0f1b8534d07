package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// revisionsCore stands in for core's SaveTranscript and GetJobAudio, by the
// wire contract of job.proto: it counts the cues each save brings, and
// presigns audio on a blob server of its own (net/http's file serving, as
// core's blob directory and S3 answer Range requests).
type revisionsCore struct {
	ytcaptionv1connect.UnimplementedJobServiceHandler
	saves atomic.Int32
	cues  atomic.Int32
	blobs string // the blob server's URL
}

func (c *revisionsCore) SaveTranscript(_ context.Context, req *connect.Request[ytcaptionv1.SaveTranscriptRequest]) (*connect.Response[ytcaptionv1.SaveTranscriptResponse], error) {
	c.saves.Add(1)
	c.cues.Store(int32(len(req.Msg.GetCues())))
	return connect.NewResponse(&ytcaptionv1.SaveTranscriptResponse{Revision: &ytcaptionv1.Revision{Revision: req.Msg.GetBaseRevision() + 1,
		SegmentCount: int32(len(req.Msg.GetCues()))}}), nil
}

func (c *revisionsCore) GetJobAudio(_ context.Context, req *connect.Request[ytcaptionv1.GetJobAudioRequest]) (*connect.Response[ytcaptionv1.GetJobAudioResponse], error) {
	return connect.NewResponse(&ytcaptionv1.GetJobAudioResponse{Url: c.blobs + "/" + req.Msg.GetId() + ".wav", ContentType: "audio/wav"}), nil
}

func send(t *testing.T, method, url string, body []byte, h map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer ytc_fuzz")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

func codeOf(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	return e.Error.Code
}

// TestSaveTranscriptOverREST: a whole transcript of 20,000 cues — far past
// the 64 KiB of other bodies — reaches core; a body declared past 4 MiB, a
// time JSON allows and a float64 cannot hold, a negative one and a missing
// base are refused at the edge, core never asked.
func TestSaveTranscriptOverREST(t *testing.T) {
	t.Parallel()
	core := &revisionsCore{}
	base, _ := startEdgeFor(t, core)
	put := base + "/v1/jobs/j1/transcript"

	cues := make([]string, 20_000)
	for i := range cues {
		cues[i] = fmt.Sprintf(`{"start": %d.25, "end": %d.75, "text": "cue number %d of the talk", "speaker": "Speaker 1"}`, i, i, i)
	}
	body := []byte(`{"base_revision": 3, "segments": [` + strings.Join(cues, ",") + `], "speakers": {"Speaker 1": "Alice"}}`)
	require.Greater(t, len(body), 1<<20)
	code, b, _ := send(t, http.MethodPut, put, body, nil)
	require.Equal(t, http.StatusOK, code, string(b))
	require.JSONEq(t, `{"revision": 4, "created_at": "1970-01-01T00:00:00Z", "segment_count": 20000}`, string(b))
	require.Equal(t, int32(20_000), core.cues.Load())

	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"1e400 seconds", `{"base_revision": 0, "segments": [{"start": 0, "end": 1, "text": "a"}, {"start": 1, "end": 1e400, "text": "b"}]}`,
			http.StatusBadRequest, errcode.InvalidTranscript},
		{"a negative time", `{"base_revision": 0, "segments": [{"start": -0.5, "end": 1, "text": "a"}]}`, http.StatusBadRequest, errcode.InvalidTranscript},
		{"a time as text", `{"base_revision": 0, "segments": [{"start": "soon", "end": 1, "text": "a"}]}`, http.StatusBadRequest, errcode.InvalidJSON},
		{"no base", `{"segments": []}`, http.StatusBadRequest, errcode.InvalidArgument},
		{"an unknown field", `{"base_revision": 0, "segments": [], "revision": 9}`, http.StatusBadRequest, errcode.InvalidArgument},
	} {
		code, b, _ := send(t, http.MethodPut, put, []byte(tc.body), nil)
		require.Equal(t, tc.status, code, tc.name)
		require.Equal(t, tc.code, codeOf(t, b), tc.name)
	}
	// A body declared past 4 MiB is refused from its header, unread: only
	// the header is sent here, and the refusal comes all the same.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "PUT /v1/jobs/j1/transcript HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer ytc_fuzz\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", 4<<20+1)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	b, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(b))
	require.Equal(t, errcode.RequestTooLarge, codeOf(t, b))

	code, b, _ = send(t, http.MethodPut, put, []byte(`{"base_revision": 0, "segments": [{"start": 0, "end": 1, "text": "a"}, {"start": 1, "end": 1e400, "text": "b"}]}`), nil)
	require.Contains(t, string(b), "cue 1: end", "the refusal names the cue (%d)", code)
	require.Equal(t, int32(1), core.saves.Load(), "no refused body reached core")
}

// TestJobAudioOverREST: the edge relays the audio core presigned — whole
// with its length, one range as 206 with the range's bytes, 416 past the
// end, the whole file for a multi-range — and a blob gone is
// audio_not_found.
func TestJobAudioOverREST(t *testing.T) {
	t.Parallel()
	wav := make([]byte, 3<<20)
	for i := range wav {
		wav[i] = byte(i * 7)
	}
	blobs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/j1.wav" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream") // as core's blob directory says
		http.ServeContent(w, r, "", time.Unix(1e9, 0), bytes.NewReader(wav))
	}))
	t.Cleanup(blobs.Close)
	base, _ := startEdgeFor(t, &revisionsCore{blobs: blobs.URL})
	audio := base + "/v1/jobs/j1/audio"

	code, b, h := send(t, http.MethodGet, audio, nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, wav, b)
	require.Equal(t, "audio/wav", h.Get("Content-Type"))
	require.Equal(t, "bytes", h.Get("Accept-Ranges"))
	require.Equal(t, fmt.Sprint(len(wav)), h.Get("Content-Length"))

	code, b, h = send(t, http.MethodGet, audio, nil, map[string]string{"Range": "bytes=1048576-1049599"})
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, wav[1<<20:1<<20+1024], b)
	require.Equal(t, fmt.Sprintf("bytes 1048576-1049599/%d", len(wav)), h.Get("Content-Range"))
	code, b, _ = send(t, http.MethodGet, audio, nil, map[string]string{"Range": "bytes=-100"})
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, wav[len(wav)-100:], b, "the last 100 bytes")

	code, b, h = send(t, http.MethodGet, audio, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(wav))})
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, code, string(b))
	require.Equal(t, fmt.Sprintf("bytes */%d", len(wav)), h.Get("Content-Range"))

	code, b, _ = send(t, http.MethodGet, audio, nil, map[string]string{"Range": "bytes=0-1,5-9"})
	require.Equal(t, http.StatusOK, code, "several ranges: the whole file, never a multipart reply")
	require.Len(t, b, len(wav))

	code, b, h = send(t, http.MethodHead, audio, nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, b)
	require.Equal(t, fmt.Sprint(len(wav)), h.Get("Content-Length"))

	code, b, _ = send(t, http.MethodGet, base+"/v1/jobs/gone/audio", nil, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, errcode.AudioNotFound, codeOf(t, b))
}
