package rest_test

import (
	"bufio"
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

	"github.com/ytcaption/ytcaption/edge"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// streamCore stands in for core behind the streaming transcription: the
// uploaded file's name is the job's id, and names the script its WatchJob
// plays and the transcript it has.
type streamCore struct {
	ytcaptionv1connect.UnimplementedJobServiceHandler
	uploads     atomic.Int64
	watchEnded  chan string // each WatchJob's job id, once its stream has ended
	transcripts map[string]string
}

func job(id string, st ytcaptionv1.JobStatus) *ytcaptionv1.Job {
	return &ytcaptionv1.Job{Id: id, Status: st}
}

func segs(texts ...string) []*ytcaptionv1.Segment {
	var out []*ytcaptionv1.Segment
	for i, t := range texts {
		out = append(out, &ytcaptionv1.Segment{Seq: int32(i), StartMs: int64(i) * 1000, EndMs: int64(i+1) * 1000, Text: t})
	}
	return out
}

const (
	queued    = ytcaptionv1.JobStatus_JOB_STATUS_QUEUED
	running   = ytcaptionv1.JobStatus_JOB_STATUS_TRANSCRIBING
	succeeded = ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED
	failed    = ytcaptionv1.JobStatus_JOB_STATUS_FAILED
	cancelled = ytcaptionv1.JobStatus_JOB_STATUS_CANCELLED
)

func (c *streamCore) UploadJob(_ context.Context, req *connect.Request[ytcaptionv1.UploadJobRequest]) (*connect.Response[ytcaptionv1.UploadJobResponse], error) {
	c.uploads.Add(1)
	id := req.Msg.GetFilename()
	if id == "refused" {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("language: not a language"))
	}
	return connect.NewResponse(&ytcaptionv1.UploadJobResponse{Job: job(id, queued)}), nil
}

func (c *streamCore) WatchJob(ctx context.Context, req *connect.Request[ytcaptionv1.WatchJobRequest], s *connect.ServerStream[ytcaptionv1.WatchJobResponse]) error {
	id := req.Msg.GetId()
	defer func() { c.watchEnded <- id }()
	send := func(st ytcaptionv1.JobStatus, epoch int, sg []*ytcaptionv1.Segment) error {
		j := job(id, st)
		if st == failed {
			j.Error = &ytcaptionv1.JobError{Code: "not_media", Message: "ffmpeg found no audio stream"}
		}
		return s.Send(&ytcaptionv1.WatchJobResponse{Job: j, Segments: sg, Cursor: fmt.Sprintf("%d:%d", epoch, len(sg)-1)})
	}
	var err error
	switch id {
	case "live": // segments as they come, white space folded, an empty one skipped
		all := segs("  Hello\n world ", "", "again.")
		err = send(queued, 1, nil)
		if err == nil {
			err = send(running, 1, all[:1])
		}
		if err == nil {
			err = send(running, 1, all[1:])
		}
		if err == nil {
			err = send(succeeded, 1, nil)
		}
	case "retried": // a second attempt sends its segments from seq 0 again
		err = send(running, 1, segs("One two"))
		if err == nil {
			err = send(running, 2, segs("One two", "three"))
		}
		if err == nil {
			err = send(succeeded, 2, nil)
		}
	case "cached": // done before it was watched: no segment comes live
		err = send(succeeded, 1, nil)
	case "failed":
		err = send(running, 1, segs("Half"))
		if err == nil {
			err = send(failed, 1, nil)
		}
	case "cancelled":
		err = send(cancelled, 1, nil)
	case "dropped": // core goes away midway
		err = send(running, 1, segs("Half"))
		if err == nil {
			err = connect.NewError(connect.CodeUnavailable, fmt.Errorf("core is shutting down"))
		}
	case "missing":
		err = connect.NewError(connect.CodeNotFound, fmt.Errorf("no job %s", id))
	case "hang": // runs until the watcher goes away
		err = send(running, 1, segs("Still", "going"))
		if err == nil {
			<-ctx.Done()
		}
	}
	return err
}

func (c *streamCore) GetTranscript(_ context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (*connect.Response[ytcaptionv1.GetTranscriptResponse], error) {
	text := c.transcripts[req.Msg.GetId()]
	if req.Msg.GetFormat() != ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_JSON {
		return connect.NewResponse(&ytcaptionv1.GetTranscriptResponse{ContentType: "text/plain", Content: []byte("1\n00:00:00,000 --> 00:00:01,000\n" + text + "\n\n")}), nil
	}
	b, err := json.Marshal(map[string]any{"language": "en", "duration_seconds": 3, "text": text, "segments": []any{}})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&ytcaptionv1.GetTranscriptResponse{ContentType: "application/json", Content: b}), nil
}

// startStreamEdge runs the edge as its binary wires it, REST only, in front
// of a streamCore; maxStreams is each key's cap on open event streams.
func startStreamEdge(t *testing.T, maxStreams int) (string, *streamCore) {
	t.Helper()
	core := &streamCore{watchEnded: make(chan string, 100), transcripts: map[string]string{
		"live": "Hello world again.", "retried": "One two three", "cached": "From the cache.", "hang": "Still going",
	}}
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(core))
	mux.Handle(ytcaptionv1connect.NewAuthServiceHandler(uploadAuth{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e, err := edge.New(edge.Config{CoreURL: srv.URL, ServiceToken: "svc", MaxStreams: maxStreams})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Serve(ctx, ln, nil)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String(), core
}

// streamPost sends an OpenAI-style upload of a file named id with the
// fields given; the caller closes the response.
func streamPost(t *testing.T, base, id string, fields ...string) *http.Response {
	t.Helper()
	ct, body := uploadNamed(t, id, []byte("RIFF"), fields...)
	req, err := http.NewRequest(http.MethodPost, base+"/v1/audio/transcriptions", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer ytc_fuzz")
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

func uploadNamed(t *testing.T, name string, file []byte, fields ...string) (string, []byte) {
	t.Helper()
	ct, body := upload(t, file, fields...)
	// upload names every file clip.wav; the stand-in reads the job's script
	// from the name.
	return ct, []byte(strings.Replace(string(body), `filename="clip.wav"`, fmt.Sprintf("filename=%q", name), 1))
}

// TestTranscriptionStreamWireFormat checks stream=true's events against
// OpenAI's documented shapes for transcription streams: data-only events,
// {"type":"transcript.text.delta","delta"} as segments arrive and one
// {"type":"transcript.text.done","text"} at the end, the deltas joined
// making the text; after the stream began, failures are an "error" event.
func TestTranscriptionStreamWireFormat(t *testing.T) {
	t.Parallel()
	base, core := startStreamEdge(t, 0)
	for _, tc := range []struct {
		id   string
		want string // the whole body
	}{
		{"live", `data: {"type":"transcript.text.delta","delta":"Hello world"}` + "\n\n" +
			`data: {"type":"transcript.text.delta","delta":" again."}` + "\n\n" +
			`data: {"type":"transcript.text.done","text":"Hello world again."}` + "\n\n"},
		{"retried", `data: {"type":"transcript.text.delta","delta":"One two"}` + "\n\n" +
			`data: {"type":"transcript.text.delta","delta":" three"}` + "\n\n" +
			`data: {"type":"transcript.text.done","text":"One two three"}` + "\n\n"},
		{"cached", `data: {"type":"transcript.text.delta","delta":"From the cache."}` + "\n\n" +
			`data: {"type":"transcript.text.done","text":"From the cache."}` + "\n\n"},
		{"failed", `data: {"type":"transcript.text.delta","delta":"Half"}` + "\n\n" +
			"event: error\n" + `data: {"type":"error","error":{"code":"not_media","message":"the transcription failed: ffmpeg found no audio stream"}}` + "\n\n"},
		{"cancelled", "event: error\n" + `data: {"type":"error","error":{"code":"cancelled","message":"the job was cancelled"}}` + "\n\n"},
		{"dropped", `data: {"type":"transcript.text.delta","delta":"Half"}` + "\n\n" +
			"event: error\n" + `data: {"type":"error","error":{"code":"unavailable","message":"the service is temporarily unavailable; retry shortly"}}` + "\n\n"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			for _, format := range []string{"json", "text"} {
				resp := streamPost(t, base, tc.id, "model", "gpt-4o-transcribe", "stream", "true", "response_format", format)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
				require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
				require.Equal(t, tc.want, string(body), format)
			}
		})
	}

	t.Run("refused before the stream: JSON errors", func(t *testing.T) {
		for _, tc := range []struct {
			id, stream string
			status     int
			code       string
		}{
			{"missing", "true", http.StatusNotFound, "not_found"},
			{"refused", "true", http.StatusBadRequest, "invalid_argument"},
			{"live", "maybe", http.StatusBadRequest, "invalid_argument"},
		} {
			before := core.uploads.Load()
			resp := streamPost(t, base, tc.id, "stream", tc.stream)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode, "%s: %s", tc.id, body)
			require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &e), "%s", body)
			require.Equal(t, tc.code, e.Error.Code, "%s", body)
			if tc.stream == "maybe" {
				require.Equal(t, before, core.uploads.Load(), "a malformed stream field creates no job")
			}
		}
	})

	t.Run("stream is ignored for formats that do not stream", func(t *testing.T) {
		resp := streamPost(t, base, "live", "stream", "true", "response_format", "srt")
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
		require.Equal(t, "1\n00:00:00,000 --> 00:00:01,000\nHello world again.\n\n", string(body))

		req, err := http.NewRequest(http.MethodPost, base+"/v1/audio/translations", nil)
		require.NoError(t, err)
		ct, upBody := uploadNamed(t, "live", []byte("RIFF"), "stream", "true")
		req.Body, req.ContentLength = io.NopCloser(strings.NewReader(string(upBody))), int64(len(upBody))
		req.Header.Set("Authorization", "Bearer ytc_fuzz")
		req.Header.Set("Content-Type", ct)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.JSONEq(t, `{"text":"Hello world again."}`, string(body), "OpenAI's translations take no stream")

		resp = streamPost(t, base, "live", "stream", "false")
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.JSONEq(t, `{"text":"Hello world again."}`, string(body))
	})
}

// TestTranscriptionStreamClientGoesAway: a client that leaves mid-stream
// ends the watch of core's job stream and gives its event-stream place back;
// the package's goleak check (TestMain) fails it if a goroutine is left.
func TestTranscriptionStreamClientGoesAway(t *testing.T) {
	t.Parallel()
	base, core := startStreamEdge(t, 1)
	resp := streamPost(t, base, "hang", "stream", "true")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, `data: {"type":"transcript.text.delta","delta":"Still"}`+"\n", line)

	// The key's one stream place is taken: a second stream is refused
	// before any job is made.
	before := core.uploads.Load()
	second := streamPost(t, base, "live", "stream", "true")
	body, err := io.ReadAll(second.Body)
	second.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, second.StatusCode, "%s", body)
	require.Contains(t, string(body), `"too_many_streams"`)
	require.Equal(t, before, core.uploads.Load())
	drain(t, core.watchEnded, "live", 0) // nothing watched for the refused one

	resp.Body.Close() // the client goes away
	drain(t, core.watchEnded, "hang", 1)

	// The place comes back (asynchronously, once the stream's writer ends).
	require.Eventually(t, func() bool {
		again := streamPost(t, base, "live", "stream", "true")
		body, err := io.ReadAll(again.Body)
		again.Body.Close()
		require.NoError(t, err)
		if again.StatusCode != http.StatusOK {
			require.Equal(t, http.StatusTooManyRequests, again.StatusCode, "%s", body)
			return false
		}
		require.Contains(t, string(body), `"transcript.text.done"`)
		return true
	}, 30*time.Second, 20*time.Millisecond, "the stream's place never came back")
}

// drain waits for want watches of job id to have ended, or none (want 0,
// looking only at those already ended).
func drain(t *testing.T, ended chan string, id string, want int) {
	t.Helper()
	if want == 0 {
		for {
			select {
			case got := <-ended:
				require.NotEqual(t, id, got)
			default:
				return
			}
		}
	}
	timeout := time.After(30 * time.Second)
	for n := 0; n < want; {
		select {
		case got := <-ended:
			if got == id {
				n++
			}
		case <-timeout:
			t.Fatalf("core's watch of %s did not end after the client went away", id)
		}
	}
}
