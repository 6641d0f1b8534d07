package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

type reply struct {
	status int
	header http.Header
	body   []byte
}

func postJob(t *testing.T, s testStack, idemKey, body string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.EdgeURL+"/v1/jobs", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{resp.StatusCode, resp.Header, b}
}

func jobID(t *testing.T, b []byte) string {
	t.Helper()
	var j struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &j), string(b))
	require.NotEmpty(t, j.ID, string(b))
	return j.ID
}

// TestIdempotencyKeyEndToEnd drives Idempotency-Key through the real edge,
// Redis and core: concurrent duplicates create one job, retries replay it
// (from Redis, and from Postgres once Redis has lost everything), other
// parameters are refused, and validation failures are not remembered.
func TestIdempotencyKeyEndToEnd(t *testing.T) {
	t.Parallel()
	s := startStack(t, "yt-dlp")
	media, _ := mediaServer(t)
	body := `{"url":"` + media + `/sense_and_sensibility_01_austen_64kb-0880.ogg","language":"en"}`
	pool, err := pgxpool.New(context.Background(), s.DBURL)
	require.NoError(t, err)
	defer pool.Close()
	jobsWith := func(url string) int {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE url = $1`, url).Scan(&n))
		return n
	}
	clipURL := media + "/sense_and_sensibility_01_austen_64kb-0880.ogg"

	// Eight clients send the same request with the same key at once.
	const n = 8
	replies := make([]reply, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Go(func() { <-gate; replies[i] = postJob(t, s, "order-7", body) })
	}
	close(gate)
	wg.Wait()
	ids := map[string]bool{}
	for _, r := range replies {
		switch r.status {
		case http.StatusAccepted:
			ids[jobID(t, r.body)] = true
		case http.StatusConflict:
			require.Equal(t, "idempotency_key_in_use", errorCode(t, r.body))
		default:
			t.Fatalf("duplicate POST: %d %s", r.status, r.body)
		}
	}
	require.Len(t, ids, 1, "every accepted duplicate names the same job")
	require.Equal(t, 1, jobsWith(clipURL), "exactly one job was created")
	var id string
	for k := range ids {
		id = k
	}

	// A retry replays the stored reply, byte for byte.
	first := postJob(t, s, "order-7", body)
	require.Equal(t, http.StatusAccepted, first.status)
	require.Equal(t, "true", first.header.Get("Idempotent-Replayed"))
	require.Equal(t, id, jobID(t, first.body))
	again := postJob(t, s, "order-7", body)
	require.True(t, bytes.Equal(first.body, again.body), "the stored response is replayed as it was")

	// Other parameters under the same key: 422.
	r := postJob(t, s, "order-7", `{"url":"`+clipURL+`","language":"de"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	require.Equal(t, "idempotency_key_mismatch", errorCode(t, r.body))

	// Redis loses everything (restarted, nothing persisted): core still knows.
	s.Redis.Stop()
	s.Redis.Start()
	r = postJob(t, s, "order-7", body)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	require.Equal(t, "true", r.header.Get("Idempotent-Replayed"))
	require.Equal(t, id, jobID(t, r.body))
	r = postJob(t, s, "order-7", `{"url":"`+clipURL+`","language":"de"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "the mismatch is caught by core too")
	require.Equal(t, 1, jobsWith(clipURL), "still one job")

	// A validation failure is not remembered: the key stays free.
	r = postJob(t, s, "order-8", `{"url":"ftp://example.com/a.mp3"}`)
	require.Equal(t, http.StatusBadRequest, r.status)
	r = postJob(t, s, "order-8", body)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	require.Empty(t, r.header.Get("Idempotent-Replayed"))
	require.NotEqual(t, id, jobID(t, r.body))

	r = postJob(t, s, strings.Repeat("k", 256), body)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "invalid_idempotency_key", errorCode(t, r.body))
}
