package rest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge"
	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/internal/bombtest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// uploadCore stands in for core behind the OpenAI-compatible upload: it
// takes every key, runs every upload at once and counts what reached it.
type uploadCore struct {
	ytcaptionv1connect.UnimplementedJobServiceHandler
	uploads, largest atomic.Int64
}

func (c *uploadCore) UploadJob(_ context.Context, req *connect.Request[ytcaptionv1.UploadJobRequest]) (*connect.Response[ytcaptionv1.UploadJobResponse], error) {
	c.uploads.Add(1)
	for n := int64(len(req.Msg.GetData())); ; {
		old := c.largest.Load()
		if n <= old || c.largest.CompareAndSwap(old, n) {
			break
		}
	}
	return connect.NewResponse(&ytcaptionv1.UploadJobResponse{Job: &ytcaptionv1.Job{Id: "job-1", Status: ytcaptionv1.JobStatus_JOB_STATUS_QUEUED}}), nil
}

func (c *uploadCore) WatchJob(_ context.Context, req *connect.Request[ytcaptionv1.WatchJobRequest], s *connect.ServerStream[ytcaptionv1.WatchJobResponse]) error {
	return s.Send(&ytcaptionv1.WatchJobResponse{Job: &ytcaptionv1.Job{Id: req.Msg.GetId(), Status: ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED}})
}

func (c *uploadCore) GetTranscript(_ context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (*connect.Response[ytcaptionv1.GetTranscriptResponse], error) {
	if req.Msg.GetFormat() == ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_JSON {
		return connect.NewResponse(&ytcaptionv1.GetTranscriptResponse{ContentType: "application/json", Content: []byte(
			`{"language":"en","duration_seconds":1,"text":"hello","segments":[{"id":0,"start":0,"end":1,"text":"hello","words":[{"start":0,"end":1,"word":"hello"}]}]}`)}), nil
	}
	return connect.NewResponse(&ytcaptionv1.GetTranscriptResponse{ContentType: "text/plain", Content: []byte("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n")}), nil
}

type uploadAuth struct {
	ytcaptionv1connect.UnimplementedAuthServiceHandler
}

func (uploadAuth) Authenticate(_ context.Context, req *connect.Request[ytcaptionv1.AuthenticateRequest]) (*connect.Response[ytcaptionv1.AuthenticateResponse], error) {
	if req.Msg.GetApiKey() != "ytc_fuzz" {
		return nil, connect.NewError(connect.CodeUnauthenticated, nil)
	}
	unlimited := &ytcaptionv1.RateLimit{PerSecond: 1 << 30, Burst: 1 << 30}
	return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: "u1", Role: "user",
		RateLimits: &ytcaptionv1.RateLimits{Create: unlimited, Read: unlimited}}), nil
}

// startEdge runs the edge as its binary wires it, REST only, in front of an
// uploadCore; it returns the REST base URL.
func startEdge(t testing.TB) (string, *uploadCore) {
	t.Helper()
	core := &uploadCore{}
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(core))
	mux.Handle(ytcaptionv1connect.NewAuthServiceHandler(uploadAuth{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e, err := edge.New(edge.Config{CoreURL: srv.URL, ServiceToken: "svc"})
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

// upload is a well-formed OpenAI-style request body.
func upload(t testing.TB, file []byte, fields ...string) (contentType string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, err := w.CreateFormFile("file", "clip.wav")
	require.NoError(t, err)
	_, err = part.Write(file)
	require.NoError(t, err)
	for i := 0; i+1 < len(fields); i += 2 {
		require.NoError(t, w.WriteField(fields[i], fields[i+1]))
	}
	require.NoError(t, w.Close())
	return w.FormDataContentType(), b.Bytes()
}

// post sends one upload request; key "" sends none.
func post(t testing.TB, client *http.Client, base, key, contentType, encoding string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/audio/transcriptions", body)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	return resp, b
}

// checkReply: a refusal is a 4xx with a stable code, never a 5xx.
func checkReply(t testing.TB, resp *http.Response, body []byte) {
	t.Helper()
	require.Less(t, resp.StatusCode, 500, "a malformed upload is the client's fault: %s", body)
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		require.NoError(t, json.Unmarshal(body, &e), "%d %s", resp.StatusCode, body)
		require.NotEmpty(t, e.Error.Code, "%d %s", resp.StatusCode, body)
	}
}

// printableHeader says whether an HTTP client can send v as a header value.
func printableHeader(v string) bool {
	for _, r := range v {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

// FuzzUpload drives the edge's OpenAI-compatible upload — the Fiber app the
// edge binary serves, through its real middleware — with arbitrary multipart
// bodies, content types and content encodings: it must never panic, never
// answer a malformed upload with a 5xx (a 4xx with a code instead), and
// never forward more than the upload limit to core.
func FuzzUpload(f *testing.F) {
	wav := []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00")
	for _, format := range []string{"json", "text", "srt", "vtt", "verbose_json", "xml", ""} {
		ct, body := upload(f, wav, "model", "whisper-1", "response_format", format, "timestamp_granularities[]", "word", "language", "en", "prompt", "Dashwood")
		f.Add(ct, "", body)
	}
	ct, body := upload(f, wav)
	f.Add(ct, "", body)
	for _, format := range []string{"json", "text", "srt"} {
		sct, sbody := upload(f, wav, "response_format", format, "stream", "true")
		f.Add(sct, "", sbody)
	}
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(body)
	_ = zw.Close()
	f.Add(ct, "gzip", zipped.Bytes())
	f.Add(ct, "br", body)
	f.Add(ct, "identity", body)
	f.Add("multipart/form-data", "", body)                                    // no boundary
	f.Add("multipart/form-data; boundary=other", "", body)                    // the wrong one
	f.Add(ct, "", body[:len(body)/2])                                         // cut short
	f.Add("application/json", "", []byte(`{"file":"x","model":"whisper-1"}`)) // not multipart
	f.Add("multipart/form-data; boundary=b", "", []byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\x00.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\nsecond\r\n--b--\r\n"))
	f.Add("multipart/form-data; boundary=b", "", []byte("--b\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\njson\r\n--b--\r\n")) // no file
	f.Add("multipart/form-data; boundary=b", "", []byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nnested\r\n--c--\r\n--b--\r\n"))
	f.Add("multipart/form-data; boundary=\"\"", "", []byte("----\r\n\r\n"))
	f.Add("", "", []byte{})

	base, core := startEdge(f)
	client := &http.Client{Timeout: 30 * time.Second}
	f.Fuzz(func(t *testing.T, contentType, encoding string, body []byte) {
		if !printableHeader(contentType) || !printableHeader(encoding) {
			return // no HTTP client sends it; the server's parser is not ours to fuzz
		}
		resp, reply := post(t, client, base, "ytc_fuzz", contentType, encoding, bytes.NewReader(body))
		checkReply(t, resp, reply)
		require.LessOrEqual(t, core.largest.Load(), int64(gate.MaxUploadBytes), "more than the upload limit reached core")
	})
}

// TestUploadLimitHoldsOnTheWire: a file at the limit reaches core whole; one
// byte more is 413 and reaches nothing.
func TestUploadLimitHoldsOnTheWire(t *testing.T) {
	t.Parallel()
	base, core := startEdge(t)
	client := &http.Client{Timeout: time.Minute}
	ct, body := upload(t, make([]byte, gate.MaxUploadBytes+1))
	resp, reply := post(t, client, base, "ytc_fuzz", ct, "", bytes.NewReader(body))
	checkReply(t, resp, reply)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s", reply)
	require.Zero(t, core.uploads.Load())

	ct, body = upload(t, make([]byte, gate.MaxUploadBytes), "response_format", "text")
	resp, reply = post(t, client, base, "ytc_fuzz", ct, "", bytes.NewReader(body))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", reply)
	require.EqualValues(t, 1, core.uploads.Load())
	require.EqualValues(t, gate.MaxUploadBytes, core.largest.Load())
}

// TestUploadGzipBombIsRefused sends the upload a multipart body, gzip-encoded,
// that inflates to 1 GiB (about 1.3 MB on the wire), without a key and with
// one: it is refused as 415 before anything inflates it, nothing reaches
// core, and the process barely grows. Not parallel, so that the
// resident-memory figure is this test's alone.
func TestUploadGzipBombIsRefused(t *testing.T) {
	var zipped bytes.Buffer
	zw, err := gzip.NewWriterLevel(&zipped, gzip.BestSpeed)
	require.NoError(t, err)
	mw := multipart.NewWriter(zw)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="bomb.wav"`)
	part, err := mw.CreatePart(h)
	require.NoError(t, err)
	zero := make([]byte, 1<<20)
	for range 1024 {
		_, err := part.Write(zero)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	require.NoError(t, zw.Close())

	base, core := startEdge(t)
	client := &http.Client{Timeout: time.Minute}
	before, _ := bombtest.Memory(t, 0)
	for _, key := range []string{"", "ytc_fuzz"} {
		resp, reply := post(t, client, base, key, mw.FormDataContentType(), "gzip", bytes.NewReader(zipped.Bytes()))
		checkReply(t, resp, reply)
		if key == "" { // refused for the key or for the encoding, whichever comes first
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusUnsupportedMediaType}, resp.StatusCode, "%s", reply)
			continue
		}
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "%s", reply)
	}
	after, _ := bombtest.Memory(t, 0)
	grew := after - before
	t.Logf("%d-byte gzip body inflating to 1 GiB, sent twice: resident memory grew %d KiB", zipped.Len(), grew>>10)
	require.Less(t, grew, int64(64<<20))
	require.Zero(t, core.uploads.Load())
}

// TestUploadFieldsInvalidUTF8AreAClientError: text fields and the file name
// travel to core as protobuf strings, which must be UTF-8; bytes that are
// not are the client's mistake (400), not the edge's (500). FuzzUpload found
// it with a language of "\xc0".
func TestUploadFieldsInvalidUTF8AreAClientError(t *testing.T) {
	t.Parallel()
	base, _ := startEdge(t)
	client := &http.Client{Timeout: 30 * time.Second}
	for _, field := range []string{"language", "prompt", "model", "response_format"} {
		ct, body := upload(t, []byte("RIFF"), field, "\xc0\xff")
		resp, reply := post(t, client, base, "ytc_fuzz", ct, "", bytes.NewReader(body))
		checkReply(t, resp, reply)
	}
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", "form-data; name=\"file\"; filename=\"\xc0\xff.wav\"")
	part, err := w.CreatePart(h)
	require.NoError(t, err)
	_, _ = part.Write([]byte("RIFF"))
	require.NoError(t, w.Close())
	resp, reply := post(t, client, base, "ytc_fuzz", w.FormDataContentType(), "", &b)
	checkReply(t, resp, reply)
}
