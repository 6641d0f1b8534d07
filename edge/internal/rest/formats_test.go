package rest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/edge"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// formatCore records the transcript requests core gets, and has one batch
// of two succeeded jobs.
type formatCore struct {
	ytcaptionv1connect.UnimplementedJobServiceHandler
	ytcaptionv1connect.UnimplementedBatchServiceHandler
	mu   sync.Mutex
	seen []*ytcaptionv1.GetTranscriptRequest
}

func (c *formatCore) GetTranscript(_ context.Context, req *connect.Request[ytcaptionv1.GetTranscriptRequest]) (*connect.Response[ytcaptionv1.GetTranscriptResponse], error) {
	c.mu.Lock()
	c.seen = append(c.seen, proto.CloneOf(req.Msg))
	c.mu.Unlock()
	return connect.NewResponse(&ytcaptionv1.GetTranscriptResponse{ContentType: "application/ttml+xml; charset=utf-8", Content: []byte("<tt/>")}), nil
}

func (c *formatCore) ListBatchJobs(_ context.Context, req *connect.Request[ytcaptionv1.ListBatchJobsRequest]) (*connect.Response[ytcaptionv1.ListBatchJobsResponse], error) {
	var jobs []*ytcaptionv1.Job
	for _, id := range []string{"j1", "j2"} {
		jobs = append(jobs, &ytcaptionv1.Job{Id: id, Status: ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED, Media: &ytcaptionv1.Media{Title: "Talk " + id}})
	}
	return connect.NewResponse(&ytcaptionv1.ListBatchJobsResponse{Jobs: jobs}), nil
}

func (c *formatCore) take() []*ytcaptionv1.GetTranscriptRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := c.seen
	c.seen = nil
	return seen
}

func startFormatEdge(t *testing.T) (string, *formatCore) {
	t.Helper()
	core := &formatCore{}
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(core))
	mux.Handle(ytcaptionv1connect.NewBatchServiceHandler(core))
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

func getWithKey(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer ytc_fuzz")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// TestTranscriptFormatsAndKaraokeReachCore: the REST transcript route and
// a batch's captions.zip take every format name and karaoke=true|false,
// send them to core as the proto says, and refuse what does not parse
// before core hears of it.
func TestTranscriptFormatsAndKaraokeReachCore(t *testing.T) {
	t.Parallel()
	base, core := startFormatEdge(t)
	for name, want := range map[string]ytcaptionv1.TranscriptFormat{
		"ass": ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_ASS, "TTML": ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TTML,
		"sbv": ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_SBV, "vtt": ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT,
	} {
		resp, b := getWithKey(t, base+"/v1/jobs/j1/transcript?format="+name+"&karaoke=true&max_lines=1")
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", name, b)
		require.Equal(t, "application/ttml+xml; charset=utf-8", resp.Header.Get("Content-Type"), "core's content type passes through")
		seen := core.take()
		require.Len(t, seen, 1)
		require.Equal(t, want, seen[0].GetFormat(), name)
		require.True(t, seen[0].GetKaraoke(), name)
		require.EqualValues(t, 1, seen[0].GetMaxLines(), name)
	}
	resp, b := getWithKey(t, base+"/v1/jobs/j1/transcript?format=ass")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.False(t, core.take()[0].GetKaraoke(), "karaoke is off unless asked for")

	for _, bad := range []string{"format=ssa", "format=ass&karaoke=maybe", "format=ass&karaoke=", "format=vtt&karaoke=yes"} {
		resp, b := getWithKey(t, base+"/v1/jobs/j1/transcript?"+bad)
		if bad == "format=ass&karaoke=" {
			require.Equal(t, http.StatusOK, resp.StatusCode, "an empty karaoke is the default: %s", b)
			core.take()
			continue
		}
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", bad, b)
		require.Contains(t, string(b), `"code":"invalid_argument"`, bad)
		require.Empty(t, core.take(), "%s reached core", bad)
	}
	_, b = getWithKey(t, base+"/v1/jobs/j1/transcript?format=ssa")
	for _, name := range []string{"srt", "vtt", "ass", "ttml", "sbv", "txt", "json", "tsv"} {
		require.Contains(t, string(b), name, "the error names every format")
	}

	resp, b = getWithKey(t, base+"/v1/batches/b1/captions.zip?format=ttml&max_line_chars=30&karaoke=false")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	require.Equal(t, []string{"Talk j1.ttml", "Talk j2.ttml"}, names, "files take the format's extension")
	seen := core.take()
	require.Len(t, seen, 2)
	for _, s := range seen {
		require.Equal(t, ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TTML, s.GetFormat())
		require.EqualValues(t, 30, s.GetMaxLineChars(), "the zip's render options reach core too")
	}
	resp, b = getWithKey(t, base+"/v1/batches/b1/captions.zip?format=ass&karaoke=sometimes")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", b)
	require.Empty(t, core.take())
}
