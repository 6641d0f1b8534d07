package edge

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/redistest"
)

func (h harness) post(key, idemKey, body string) (*http.Response, []byte) {
	h.t.Helper()
	return h.doWith(http.MethodPost, "/v1/jobs", key, body, map[string]string{"Idempotency-Key": idemKey})
}

// TestIdempotencyKeyInFlightIs409: while the first request with a key is
// still at core, a duplicate hears 409 idempotency_key_in_use, and once it
// finished the duplicate is replayed.
func TestIdempotencyKeyInFlightIs409(t *testing.T) {
	t.Parallel()
	h := startWith(t, redistest.Start(t).URL())
	h.core.gate, h.core.atGate = make(chan struct{}), make(chan struct{}, 1)
	first := make(chan int, 1)
	go func() { r, _ := h.post("key-alice", "k1", createBody); first <- r.StatusCode }()
	select {
	case <-h.core.atGate: // the first request is at core, holding the key
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached core")
	}
	resp, body := h.post("key-alice", "k1", createBody)
	require.Equal(t, http.StatusConflict, resp.StatusCode, string(body))
	require.Equal(t, "idempotency_key_in_use", errCode(t, body))
	close(h.core.gate)
	require.Equal(t, http.StatusAccepted, <-first)
	resp, _ = h.post("key-alice", "k1", createBody)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	resp, _ = h.post("key-bob", "k1", createBody)
	require.Empty(t, resp.Header.Get("Idempotent-Replayed"), "keys are per user")
}
