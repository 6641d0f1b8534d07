package devstack

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

type batchJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Counts struct {
		Total, Queued, Running, Succeeded, Failed, Cancelled int
	} `json:"counts"`
	Entries int `json:"entries"`
	Error   *struct{ Code, Message string }
}

func (c client) batch(id string) batchJSON {
	c.t.Helper()
	code, b := c.do("GET", "/v1/batches/"+id, nil)
	require.Equal(c.t, http.StatusOK, code, string(b))
	var out batchJSON
	require.NoError(c.t, json.Unmarshal(b, &out))
	return out
}

// waitForBatch polls the batch until it has ended or the deadline passes.
func (c client) waitForBatch(id string, limit time.Duration) batchJSON {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b := c.batch(id)
		if b.Status == "done" || b.Status == "failed" || b.Status == "cancelled" {
			return b
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("batch %s: not ended within %s; last %+v", id, limit, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBatchesEndToEnd: a page with five <video>s, enumerated by the real
// yt-dlp's generic extractor, and a list of URLs become one job per entry
// through the whole stack, all of which succeed; refusals carry their codes.
func TestBatchesEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("yt-dlp"); err != nil {
		t.Skip("yt-dlp is not installed (make deps installs it)")
	}
	media, refs := mediaServer(t)
	ids := make([]string, 0, len(refs))
	for id := range refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head><title>Sense and Sensibility</title></head><body>")
		for _, id := range ids {
			fmt.Fprintf(w, "<video controls src=\"%s/%s.ogg\"></video>\n", media, id)
		}
		fmt.Fprint(w, "</body></html>")
	}))
	t.Cleanup(page.Close)
	ts := startStackWith(t, "yt-dlp", func(c *Config) { c.YtDlpExtractors = "generic,html5" })
	api := client{t: t, base: ts.EdgeURL, key: ts.APIKey}

	t.Run("refusals", func(t *testing.T) {
		many := make([]string, 501)
		for i := range many {
			many[i] = fmt.Sprintf("%s/%d.ogg", media, i)
		}
		for _, tc := range []struct {
			body   map[string]any
			status int
			code   string
		}{
			{map[string]any{"url": "ftp://example.com/list"}, http.StatusBadRequest, "invalid_url"},
			{map[string]any{"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}, http.StatusBadRequest, "invalid_url"},
			{map[string]any{"urls": []string{media + "/a.ogg", "not a url"}}, http.StatusBadRequest, "invalid_url"},
			{map[string]any{"urls": many}, http.StatusBadRequest, "invalid_argument"},
			{map[string]any{"url": page.URL, "max_items": 1001}, http.StatusBadRequest, "invalid_argument"},
			{map[string]any{"url": page.URL, "max_items": -1}, http.StatusBadRequest, "invalid_argument"},
			{map[string]any{"url": page.URL, "order": "random"}, http.StatusBadRequest, "invalid_argument"},
			{map[string]any{"url": page.URL, "bogus": 1}, http.StatusBadRequest, "invalid_argument"},
		} {
			code, b := api.do("POST", "/v1/batches", tc.body)
			require.Equal(t, tc.status, code, string(b))
			require.Equal(t, tc.code, errorCode(t, b), string(b))
		}
		code, b := api.do("GET", "/v1/batches/00000000-0000-0000-0000-000000000000", nil)
		require.Equal(t, http.StatusNotFound, code, string(b))
	})

	t.Run("a page with several media", func(t *testing.T) {
		code, b := api.do("POST", "/v1/batches", map[string]any{"url": page.URL + "/talks.html", "language": "en"})
		require.Equal(t, http.StatusAccepted, code, string(b))
		var created batchJSON
		require.NoError(t, json.Unmarshal(b, &created))
		require.Equal(t, "enumerating", created.Status)
		done := api.waitForBatch(created.ID, 4*time.Minute)
		require.Equal(t, "done", done.Status, "%+v", done)
		require.Equal(t, len(ids), done.Entries)
		require.Equal(t, len(ids), done.Counts.Total)
		require.Equal(t, len(ids), done.Counts.Succeeded, "%+v", done.Counts)

		code, b = api.do("GET", "/v1/batches/"+created.ID+"/jobs", nil)
		require.Equal(t, http.StatusOK, code, string(b))
		var jobs struct{ Jobs []jobJSON }
		require.NoError(t, json.Unmarshal(b, &jobs))
		require.Len(t, jobs.Jobs, len(ids))
		for i, j := range jobs.Jobs {
			require.Equal(t, fmt.Sprintf("%s/%s.ogg", media, ids[i]), j.URL, "the page's order")
			require.Equal(t, "succeeded", j.Status)
		}

		code, b = api.do("GET", "/v1/batches/"+created.ID+"/captions.zip?format=vtt", nil)
		require.Equal(t, http.StatusOK, code, string(b))
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		require.NoError(t, err)
		require.Len(t, zr.File, len(ids))
		for _, f := range zr.File {
			require.True(t, strings.HasSuffix(f.Name, ".vtt"), f.Name)
			require.NotContains(t, f.Name, "/")
		}
	})

	t.Run("a list of URLs", func(t *testing.T) {
		urls := []string{media + "/" + ids[0] + ".ogg", media + "/" + ids[1] + ".ogg"}
		body := map[string]any{"urls": urls, "language": "en"}
		code, b := api.do("POST", "/v1/batches", body)
		require.Equal(t, http.StatusAccepted, code, string(b))
		var created batchJSON
		require.NoError(t, json.Unmarshal(b, &created))
		require.Equal(t, "running", created.Status)
		require.Equal(t, 2, created.Counts.Total)
		done := api.waitForBatch(created.ID, 2*time.Minute)
		require.Equal(t, "done", done.Status)
		require.Equal(t, 2, done.Counts.Succeeded, "%+v", done.Counts)

		code, b = api.do("GET", "/v1/batches", nil)
		require.Equal(t, http.StatusOK, code, string(b))
		var list struct{ Batches []batchJSON }
		require.NoError(t, json.Unmarshal(b, &list))
		require.GreaterOrEqual(t, len(list.Batches), 2)
		require.Equal(t, created.ID, list.Batches[0].ID, "newest first")
	})

	t.Run("events follow a batch to its end", func(t *testing.T) {
		code, b := api.do("POST", "/v1/batches", map[string]any{"urls": []string{media + "/" + ids[3] + ".ogg", media + "/" + ids[4] + ".ogg"}, "language": "en", "source": "asr"})
		require.Equal(t, http.StatusAccepted, code, string(b))
		var created batchJSON
		require.NoError(t, json.Unmarshal(b, &created))
		req, err := http.NewRequest("GET", ts.EdgeURL+"/v1/batches/"+created.ID+"/events", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+ts.APIKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		// The stream ends by itself once the batch has: read it to the end.
		sc := bufio.NewScanner(resp.Body)
		var events []batchJSON
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev batchJSON
				require.NoError(t, json.Unmarshal([]byte(data), &ev))
				events = append(events, ev)
			}
		}
		require.NotEmpty(t, events)
		last := events[len(events)-1]
		require.Equal(t, "done", last.Status)
		require.Equal(t, 2, last.Counts.Succeeded, "%+v", last.Counts)
		for i := 1; i < len(events); i++ {
			require.NotEqual(t, events[i-1], events[i], "an event only on a change")
		}

		code, b = api.do("GET", "/v1/batches/00000000-0000-0000-0000-000000000000/events", nil)
		require.Equal(t, http.StatusNotFound, code, string(b))
	})

	t.Run("over Connect, through the same door", func(t *testing.T) {
		ctx := context.Background()
		batches := ytcaptionv1connect.NewBatchServiceClient(http.DefaultClient, ts.ConnectURL)
		req := &ytcaptionv1.CreateBatchRequest{Urls: []string{media + "/" + ids[2] + ".ogg"}, IdempotencyKey: "connect-batch"}
		_, err := batches.CreateBatch(ctx, withKey("", req))
		require.Equal(t, connect.CodeUnauthenticated, connect.CodeOf(err))
		first, err := batches.CreateBatch(ctx, withKey(ts.APIKey, req))
		require.NoError(t, err)
		again, err := batches.CreateBatch(ctx, withKey(ts.APIKey, req))
		require.NoError(t, err)
		require.True(t, again.Msg.GetReplayed())
		require.Equal(t, "true", again.Header().Get("Idempotent-Replayed"))
		require.Equal(t, first.Msg.GetBatch().GetId(), again.Msg.GetBatch().GetId())
		got, err := batches.GetBatch(ctx, withKey(ts.APIKey, &ytcaptionv1.GetBatchRequest{Id: first.Msg.GetBatch().GetId()}))
		require.NoError(t, err)
		require.EqualValues(t, 1, got.Msg.GetBatch().GetCounts().GetTotal())
		_, err = batches.CreateBatch(ctx, withKey(ts.APIKey, &ytcaptionv1.CreateBatchRequest{Url: "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}))
		require.Equal(t, connect.CodeInvalidArgument, connect.CodeOf(err))
		require.Equal(t, "invalid_url", errcode.OfConnect(err))
	})
}
