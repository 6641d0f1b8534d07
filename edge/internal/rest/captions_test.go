package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// captionsCore stands in for core's ListCaptions, by the wire contract of
// job.proto: a listing for one video, a coded Connect error for others.
type captionsCore struct {
	ytcaptionv1connect.UnimplementedJobServiceHandler
	mu    sync.Mutex
	calls []string // url and user of each call
}

// siteErrors are the refusals core sends for a video, as its toConnectError
// writes them: the Connect code and the ytcaption code as an ErrorDetail.
var siteErrors = map[string]struct {
	code   connect.Code
	detail string
}{
	"private":  {connect.CodePermissionDenied, errcode.PrivateVideo},
	"removed":  {connect.CodeNotFound, errcode.VideoUnavailable},
	"botcheck": {connect.CodeUnavailable, errcode.BotCheck},
	"toolong":  {connect.CodeFailedPrecondition, errcode.TooLong},
	"broken":   {connect.CodeUnavailable, errcode.DownloadFailed},
	"badurl":   {connect.CodeInvalidArgument, errcode.InvalidURL},
}

func (c *captionsCore) ListCaptions(_ context.Context, req *connect.Request[ytcaptionv1.ListCaptionsRequest]) (*connect.Response[ytcaptionv1.ListCaptionsResponse], error) {
	c.mu.Lock()
	c.calls = append(c.calls, req.Msg.GetUrl()+" "+req.Header().Get(svcauth.UserHeader))
	c.mu.Unlock()
	if e, ok := siteErrors[req.Msg.GetUrl()]; ok {
		ce := connect.NewError(e.code, errors.New("the site says "+e.detail))
		d, err := connect.NewErrorDetail(&ytcaptionv1.ErrorDetail{Code: e.detail})
		if err != nil {
			return nil, err
		}
		ce.AddDetail(d)
		return nil, ce
	}
	return connect.NewResponse(&ytcaptionv1.ListCaptionsResponse{
		Url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ", Site: "youtube", Id: "dQw4w9WgXcQ", Title: "Never Gonna", Language: "en",
		Tracks: []*ytcaptionv1.CaptionTrack{
			{Language: "en", Name: "English", Translatable: true, Original: true},
			{Language: "en", Name: "English", Automatic: true, Translatable: true, Original: true},
		},
		Media: &ytcaptionv1.Media{Title: "Never Gonna", DurationSeconds: 212, Uploader: "Rick Astley", Site: "youtube", SiteId: "dQw4w9WgXcQ",
			UploadDate: "2009-10-25", ThumbnailUrl: "https://i.ytimg.com/vi/dQw4w9WgXcQ/hq.jpg", WebpageUrl: "https://www.youtube.com/watch?v=dQw4w9WgXcQ"},
	}), nil
}

func (c *captionsCore) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// startCaptionsEdge runs the edge as its binary wires it, REST and Connect,
// in front of a captionsCore; it returns both base URLs.
func startCaptionsEdge(t *testing.T) (rest, connectURL string, core *captionsCore) {
	t.Helper()
	core = &captionsCore{}
	rest, connectURL = startEdgeFor(t, core)
	return rest, connectURL, core
}

// startEdgeFor runs the edge as its binary wires it, REST and Connect, in
// front of core's JobService jobs (and an AuthService knowing the key
// ytc_fuzz); it returns both base URLs.
func startEdgeFor(t *testing.T, jobs ytcaptionv1connect.JobServiceHandler) (rest, connectURL string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(jobs))
	mux.Handle(ytcaptionv1connect.NewAuthServiceHandler(uploadAuth{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e, err := edge.New(edge.Config{CoreURL: srv.URL, ServiceToken: "svc"})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Serve(ctx, ln, cln)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String(), "http://" + cln.Addr().String()
}

func getCaptions(t *testing.T, base, key, videoURL string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/media/captions?url="+url.QueryEscape(videoURL), nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestListCaptionsOverREST(t *testing.T) {
	t.Parallel()
	base, _, core := startCaptionsEdge(t)

	status, body := getCaptions(t, base, "ytc_fuzz", "https://youtu.be/dQw4w9WgXcQ")
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.JSONEq(t, `{"url":"https://www.youtube.com/watch?v=dQw4w9WgXcQ","site":"youtube","id":"dQw4w9WgXcQ","title":"Never Gonna","language":"en",
		"tracks":[{"language":"en","name":"English","automatic":false,"translatable":true,"original":true},
		          {"language":"en","name":"English","automatic":true,"translatable":true,"original":true}],
		"media":{"title":"Never Gonna","duration_seconds":212,"uploader":"Rick Astley","site":"youtube","site_id":"dQw4w9WgXcQ",
		         "upload_date":"2009-10-25","thumbnail_url":"https://i.ytimg.com/vi/dQw4w9WgXcQ/hq.jpg","webpage_url":"https://www.youtube.com/watch?v=dQw4w9WgXcQ"}}`,
		string(body))
	require.Equal(t, []string{"https://youtu.be/dQw4w9WgXcQ u1"}, core.seen(), "the URL as given, for the caller")

	for video, want := range map[string]struct {
		status int
		code   string
	}{
		"private":  {http.StatusForbidden, errcode.PrivateVideo},
		"removed":  {http.StatusNotFound, errcode.VideoUnavailable},
		"botcheck": {http.StatusServiceUnavailable, errcode.BotCheck},
		"toolong":  {http.StatusUnprocessableEntity, errcode.TooLong},
		"broken":   {http.StatusBadGateway, errcode.DownloadFailed},
		"badurl":   {http.StatusBadRequest, errcode.InvalidURL},
	} {
		status, body := getCaptions(t, base, "ytc_fuzz", video)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		require.NoError(t, json.Unmarshal(body, &e), "%s", body)
		require.Equal(t, want.status, status, "%s: %s", video, body)
		require.Equal(t, want.code, e.Error.Code, video)
		require.Equal(t, "the site says "+want.code, e.Error.Message, "core's words reach the client")
	}

	n := len(core.seen())
	status, body = getCaptions(t, base, "ytc_fuzz", "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, string(body), `"code":"invalid_url"`)
	status, _ = getCaptions(t, base, "", "https://youtu.be/dQw4w9WgXcQ")
	require.Equal(t, http.StatusUnauthorized, status)
	status, _ = getCaptions(t, base, "ytc_wrong", "https://youtu.be/dQw4w9WgXcQ")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Len(t, core.seen(), n, "neither a missing URL nor a bad key reaches core")
}

func TestListCaptionsOverConnect(t *testing.T) {
	t.Parallel()
	_, door, core := startCaptionsEdge(t)
	client := ytcaptionv1connect.NewJobServiceClient(http.DefaultClient, door)
	req := connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "https://youtu.be/dQw4w9WgXcQ"})
	req.Header().Set("Authorization", "Bearer ytc_fuzz")
	resp, err := client.ListCaptions(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, resp.Msg.GetTracks(), 2)
	require.Equal(t, "2009-10-25", resp.Msg.GetMedia().GetUploadDate())
	require.Equal(t, []string{"https://youtu.be/dQw4w9WgXcQ u1"}, core.seen())

	req = connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "private"})
	req.Header().Set("Authorization", "Bearer ytc_fuzz")
	_, err = client.ListCaptions(context.Background(), req)
	require.Equal(t, connect.CodePermissionDenied, connect.CodeOf(err), "core's error passes through the door")

	req = connect.NewRequest(&ytcaptionv1.ListCaptionsRequest{Url: "https://youtu.be/dQw4w9WgXcQ"})
	_, err = client.ListCaptions(context.Background(), req)
	require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
}
