package core_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/internal/wav"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// tusCore is a single-box core with two users, as the edge would reach it.
type tusCore struct {
	url        string
	alice, bob string // user ids
	jobs       ytcaptionv1connect.JobServiceClient
}

func startTusCore(t *testing.T, maxUpload int64) tusCore {
	t.Helper()
	cfg := core.Config{DataDir: t.TempDir(), ServiceToken: "svc-token", NodeTokens: []string{"node-token"},
		WorkDir: t.TempDir(), YtDlpBinary: "/nonexistent/yt-dlp", Logger: slog.New(slog.DiscardHandler),
		MaxUploadBytes: maxUpload}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := core.New(ctx, cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-served)
		c.Close()
	})
	tc := tusCore{url: "http://" + ln.Addr().String()}
	hc := &http.Client{Transport: &svcauth.Transport{Token: "svc-token"}}
	auth := ytcaptionv1connect.NewAuthServiceClient(hc, tc.url)
	for _, u := range []struct {
		name string
		id   *string
	}{{"alice", &tc.alice}, {"bob", &tc.bob}} {
		key, err := c.EnsureAPIKey(ctx, u.name, false, "")
		require.NoError(t, err)
		resp, err := auth.Authenticate(ctx, connect.NewRequest(&ytcaptionv1.AuthenticateRequest{ApiKey: key}))
		require.NoError(t, err)
		*u.id = resp.Msg.GetUserId()
	}
	tc.jobs = ytcaptionv1connect.NewJobServiceClient(hc, tc.url)
	return tc
}

// tus sends one tus request as the edge would: the service token and the
// user's id, or neither when user is "".
func (tc tusCore) tus(t *testing.T, user, method, path string, h map[string]string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, tc.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Tus-Resumable", "1.0.0")
	if user != "" {
		req.Header.Set("Authorization", "Bearer svc-token")
		req.Header.Set(svcauth.UserHeader, user)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// errorCode reads the REST error shape core answers refusals in.
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &e), "body %q", b)
	return e.Error.Code
}

// toneWAV is a second of a 440 Hz tone as a 16 kHz mono WAV.
func toneWAV() []byte {
	const n = wav.SampleRate
	var buf bytes.Buffer
	buf.Write(wav.Header(2 * n))
	for i := range n {
		_ = binary.Write(&buf, binary.LittleEndian, int16(8000*math.Sin(2*math.Pi*440*float64(i)/wav.SampleRate)))
	}
	return buf.Bytes()
}

// TestTusUploadsAreBoundedOwnedAndBecomeJobs drives core's tus endpoint as
// the edge does: refusals come from the headers before any byte is stored,
// another user's upload does not exist, an upload resumes from the offset
// HEAD reports, and the finished file becomes a job the fetch stage decodes.
func TestTusUploadsAreBoundedOwnedAndBecomeJobs(t *testing.T) {
	t.Parallel()
	const maxUpload = 1 << 20
	tc := startTusCore(t, maxUpload)
	ctx := context.Background()
	data := toneWAV()
	length := strconv.Itoa(len(data))
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte("../lec\x00ture.wav"))

	// Only the edge, naming a user.
	resp := tc.tus(t, "", http.MethodPost, "/v1/uploads", map[string]string{"Upload-Length": length}, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "unauthorized", errorCode(t, resp))

	// Bounded before the first byte.
	resp = tc.tus(t, tc.alice, http.MethodPost, "/v1/uploads", nil, nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "no Upload-Length")
	require.Equal(t, "invalid_argument", errorCode(t, resp))
	resp = tc.tus(t, tc.alice, http.MethodPost, "/v1/uploads", map[string]string{"Upload-Defer-Length": "1"}, nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a deferred length")
	require.Equal(t, "invalid_argument", errorCode(t, resp))
	resp = tc.tus(t, tc.alice, http.MethodPost, "/v1/uploads", map[string]string{"Upload-Length": strconv.Itoa(maxUpload + 1)}, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "request_too_large", errorCode(t, resp))

	resp = tc.tus(t, tc.alice, http.MethodPost, "/v1/uploads", map[string]string{"Upload-Length": length, "Upload-Metadata": meta}, nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, strconv.Itoa(maxUpload), resp.Header.Get("Tus-Max-Size"))
	loc := resp.Header.Get("Location")
	require.Contains(t, loc, "/v1/uploads/")
	path := loc[strings.Index(loc, "/v1/uploads/"):]
	id := strings.TrimPrefix(path, "/v1/uploads/")

	// Another user's upload does not exist for them.
	for _, m := range []string{http.MethodHead, http.MethodPatch, http.MethodDelete} {
		resp = tc.tus(t, tc.bob, m, path, map[string]string{"Upload-Offset": "0"}, []byte("x"))
		require.Equal(t, http.StatusNotFound, resp.StatusCode, m)
	}
	_, err := tc.jobs.CreateJob(ctx, forUser(tc.bob, &ytcaptionv1.CreateJobRequest{UploadId: id}))
	require.Equal(t, connect.CodeNotFound, connect.CodeOf(err), "bob cannot make a job of alice's upload")

	// Half, then resume from what HEAD says.
	half := len(data) / 2
	resp = tc.tus(t, tc.alice, http.MethodPatch, path, map[string]string{"Upload-Offset": "0"}, data[:half])
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, err = tc.jobs.CreateJob(ctx, forUser(tc.alice, &ytcaptionv1.CreateJobRequest{UploadId: id}))
	require.Equal(t, connect.CodeFailedPrecondition, connect.CodeOf(err), "an unfinished upload makes no job: %v", err)
	resp = tc.tus(t, tc.alice, http.MethodHead, path, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, strconv.Itoa(half), resp.Header.Get("Upload-Offset"))
	resp = tc.tus(t, tc.alice, http.MethodPatch, path, map[string]string{"Upload-Offset": "1"}, data[1:])
	require.Equal(t, http.StatusConflict, resp.StatusCode, "a wrong offset")
	resp = tc.tus(t, tc.alice, http.MethodPatch, path, map[string]string{"Upload-Offset": strconv.Itoa(half)}, data[half:])
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp = tc.tus(t, tc.alice, http.MethodHead, path, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, length, resp.Header.Get("Upload-Offset"), "a finished upload is whole")

	_, err = tc.jobs.CreateJob(ctx, forUser(tc.alice, &ytcaptionv1.CreateJobRequest{UploadId: id, Url: "https://example.com/a.wav"}))
	require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err), "url or upload_id")
	created, err := tc.jobs.CreateJob(ctx, forUser(tc.alice, &ytcaptionv1.CreateJobRequest{UploadId: id}))
	require.NoError(t, err)
	j := created.Msg.GetJob()
	t.Logf("job %s url %q", j.GetId(), j.GetUrl())
	require.Equal(t, "upload:lecture.wav", j.GetUrl(), "titled by its cleaned file name")

	// The fetch stage reads the stored file and decodes it: the job waits
	// for a gpu-node, ready, with the tone's length.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := tc.jobs.GetJob(ctx, forUser(tc.alice, &ytcaptionv1.GetJobRequest{Id: j.GetId()}))
		require.NoError(t, err)
		st := got.Msg.GetJob().GetStatus()
		if st == ytcaptionv1.JobStatus_JOB_STATUS_READY {
			m := got.Msg.GetJob().GetMedia()
			t.Logf("ready: %q, %.3f s", m.GetTitle(), m.GetDurationSeconds())
			require.InDelta(t, 1.0, m.GetDurationSeconds(), 0.05)
			require.Equal(t, "lecture.wav", m.GetTitle())
			break
		}
		require.NotEqual(t, ytcaptionv1.JobStatus_JOB_STATUS_FAILED, st, "job failed: %s", got.Msg.GetJob().GetError())
		require.True(t, time.Now().Before(deadline), "job still %s", st)
		time.Sleep(50 * time.Millisecond) // polling with a deadline, not synchronising
	}

	// Terminated: gone for its owner too.
	resp = tc.tus(t, tc.alice, http.MethodDelete, path, nil, nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp = tc.tus(t, tc.alice, http.MethodHead, path, nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// forUser is a request as the edge sends it for user.
func forUser[T any](user string, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set(svcauth.UserHeader, user)
	return r
}
