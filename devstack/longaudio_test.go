package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/wer"
)

// TestLongAudioIsChunkedAtSilencesAndStitched: the LibriVox clips joined with
// pauses, longer than the chunk length, are cut at the pauses, transcribed by
// three gpu-nodes in parallel and stitched into one monotonic transcript made
// of exactly the chunks' own transcripts, in order.
func TestLongAudioIsChunkedAtSilencesAndStitched(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, "yt-dlp", func(c *Config) { c.ChunkLength, c.Nodes = 12*time.Second, 3 })
	media, refs := mediaServer(t)
	api := client{t: t, base: s.EdgeURL, key: s.APIKey}

	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range refs {
			if !yield(id) {
				return
			}
		}
	})
	// The clips with 1.5 s of silence after each, as one file.
	dir := t.TempDir()
	long := filepath.Join(dir, "joined.ogg")
	args := []string{}
	filter := ""
	for i, id := range ids {
		args = append(args, "-i", filepath.Join(librivox, id+".wav"), "-f", "lavfi", "-t", "1.5", "-i", "anullsrc=r=16000:cl=mono")
		filter += fmt.Sprintf("[%d:a][%d:a]", 2*i, 2*i+1)
	}
	filter += fmt.Sprintf("concat=n=%d:v=0:a=1", 2*len(ids))
	ffmpeg(t, append(args, "-filter_complex", filter, "-c:a", "libvorbis", long)...)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	served := srv.URL + "/joined.ogg"

	// Each clip on its own, for the WER to beat.
	var alone wer.Corpus
	var refText []string
	for _, id := range ids {
		j := api.waitFor(api.create(media+"/"+id+".ogg").ID, 2*time.Minute, terminal)
		require.Equal(t, "succeeded", j.Status)
		code, txt := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=txt", nil)
		require.Equal(t, http.StatusOK, code)
		alone.Add(refs[id], string(txt))
		refText = append(refText, refs[id])
	}

	j := api.waitFor(api.create(served).ID, 3*time.Minute, terminal)
	require.Equal(t, "succeeded", j.Status, "%+v", j.Error)
	require.GreaterOrEqual(t, j.Chunks, 3, "about 33 s of audio in chunks of at most 12 s")

	code, b := api.do("GET", "/v1/jobs/"+j.ID+"/transcript?format=json", nil)
	require.Equal(t, http.StatusOK, code)
	var doc struct {
		Duration float64 `json:"duration_seconds"`
		Text     string
		Segments []struct {
			Start, End float64
			Words      []struct{ Start, End float64 }
		}
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	prev := 0.0
	for i, sg := range doc.Segments {
		require.GreaterOrEqual(t, sg.Start, prev, "segment %d starts before the previous ends", i)
		require.GreaterOrEqual(t, sg.End, sg.Start)
		for _, w := range sg.Words {
			require.True(t, sg.Start <= w.Start && w.Start <= w.End && w.End <= sg.End, "word %+v outside segment %d", w, i)
		}
		prev = sg.End
	}
	require.LessOrEqual(t, prev, j.Media.DurationSeconds+0.001)

	var whole wer.Corpus
	whole.Add(strings.Join(refText, " "), doc.Text)
	t.Logf("WER: %.3f stitched from %d chunks, %.3f clip by clip", whole.Rate(), j.Chunks, alone.Rate())

	// Stitching loses, repeats and reorders nothing: the job's words are
	// each chunk's own transcript, in the chunks' order. (The WER of chunked
	// audio is no test of stitching: pocketsphinx adapts to each stretch of
	// audio it hears, so the same words cut otherwise come out otherwise.)
	pool, err := pgx.Connect(context.Background(), s.DBURL)
	require.NoError(t, err)
	defer pool.Close(context.Background())
	var chunkWords []string
	rows, err := pool.Query(context.Background(), `
		SELECT sg.text FROM jobs c JOIN segments sg ON sg.job_id = c.id AND sg.epoch = c.epoch
		WHERE c.parent_id = $1 ORDER BY c.chunk_index, sg.seq`, j.ID)
	require.NoError(t, err)
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, tx := range texts {
		chunkWords = append(chunkWords, strings.Fields(tx)...)
	}
	require.NotEmpty(t, chunkWords)
	require.Equal(t, chunkWords, strings.Fields(doc.Text), "the stitched transcript is the chunks' transcripts in order")

	// The chunks ran at once on several nodes: their transcriptions overlap.
	rows, err = pool.Query(context.Background(), `SELECT transcribing_at, finished_at FROM jobs WHERE parent_id = $1 ORDER BY transcribing_at`, j.ID)
	require.NoError(t, err)
	type span struct{ From, To time.Time }
	spans, err := pgx.CollectRows(rows, pgx.RowToStructByPos[span])
	require.NoError(t, err)
	require.Len(t, spans, j.Chunks)
	overlap := false
	for i := 1; i < len(spans); i++ {
		overlap = overlap || spans[i].From.Before(spans[i-1].To)
	}
	require.True(t, overlap, "chunks transcribed in parallel: %v", spans)

	code, b = api.do("GET", "/v1/jobs?limit=100", nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(b), "#chunk=", "chunks are not the user's jobs")
}
