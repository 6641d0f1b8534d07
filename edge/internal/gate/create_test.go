package gate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge/internal/redisx"
	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/internal/idempotency"
	"github.com/ytcaption/ytcaption/internal/waittest"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// fakeJobs is core's CreateJob: each call makes a new job, unless told to
// fail or to answer as core does for a key it remembers (replayed). With hold
// set, a call reports on at and waits for hold to close.
type fakeJobs struct {
	calls    atomic.Int64
	fail     atomic.Bool
	replayed atomic.Bool
	at, hold chan struct{}
}

var errCore = errors.New("core is down")

func (f *fakeJobs) create(_ context.Context, msg *ytcaptionv1.CreateJobRequest) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	n := f.calls.Add(1)
	if f.hold != nil {
		f.at <- struct{}{}
		<-f.hold
	}
	if f.fail.Load() {
		return nil, errCore
	}
	return connect.NewResponse(&ytcaptionv1.CreateJobResponse{Replayed: f.replayed.Load(), Job: &ytcaptionv1.Job{Id: fmt.Sprintf("job-%d", n),
		Url: msg.GetUrl(), Status: ytcaptionv1.JobStatus_JOB_STATUS_QUEUED}}), nil
}

func jobRequest(key, url string) *ytcaptionv1.CreateJobRequest {
	return &ytcaptionv1.CreateJobRequest{Url: url, Language: "en", IdempotencyKey: key}
}

// jobID is the id in a JSON reply.
func jobID(t *testing.T, c *Created) string {
	t.Helper()
	var j struct{ ID string }
	require.NoError(t, json.Unmarshal(c.Body, &j))
	return j.ID
}

func TestCreate(t *testing.T) {
	onEach(t, func(t *testing.T, b backend) {
		h, core := newGate(t, b, 20), &fakeJobs{}
		ctx, user := context.Background(), "user-"+rand.Text()
		const url = "https://example.com/a"

		// Without a key every request runs.
		for i := range 2 {
			c, err := h.Create(ctx, user, JSON, jobRequest("", url), core.create)
			require.NoError(t, err)
			require.False(t, c.Replayed)
			require.Equal(t, http.StatusAccepted, c.Status)
			require.Equal(t, fmt.Sprintf("job-%d", i+1), jobID(t, c))
		}

		for _, bad := range []string{"new\nline", "ünïcode", strings.Repeat("k", idempotency.MaxKeyLen+1)} {
			_, err := h.Create(ctx, user, JSON, jobRequest(bad, url), core.create)
			refusal(t, err, Invalid, "invalid_idempotency_key")
		}
		require.EqualValues(t, 2, core.calls.Load(), "an invalid key runs nothing")

		// The first request with a key runs; a retry over either door
		// gets its reply again, without core.
		first, err := h.Create(ctx, user, JSON, jobRequest("k1", url), core.create)
		require.NoError(t, err)
		require.False(t, first.Replayed)
		require.Equal(t, "job-3", jobID(t, first))
		again, err := h.Create(ctx, user, JSON, jobRequest("k1", url), core.create)
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, first.Status, again.Status)
		require.Equal(t, first.Body, again.Body)
		msg, err := h.Create(ctx, user, Proto, jobRequest("k1", url), core.create)
		require.NoError(t, err)
		require.True(t, msg.Replayed)
		require.True(t, msg.Msg.GetReplayed(), "the message says it is a replay")
		require.Equal(t, "job-3", msg.Msg.GetJob().GetId(), "a key used over REST replays over Connect")
		require.EqualValues(t, 3, core.calls.Load())

		_, err = h.Create(ctx, user, JSON, jobRequest("k1", "https://example.com/other"), core.create)
		refusal(t, err, KeyMismatch, "idempotency_key_mismatch")
		other, err := h.Create(ctx, "another-"+user, Proto, jobRequest("k1", url), core.create)
		require.NoError(t, err)
		require.False(t, other.Replayed, "keys are per user")
		require.Equal(t, "job-4", other.Msg.GetJob().GetId())

		// A failure is not kept: the retry runs.
		core.fail.Store(true)
		_, err = h.Create(ctx, user, JSON, jobRequest("k2", url), core.create)
		require.ErrorIs(t, err, errCore)
		core.fail.Store(false)
		retry, err := h.Create(ctx, user, JSON, jobRequest("k2", url), core.create)
		require.NoError(t, err)
		require.False(t, retry.Replayed)
		require.Equal(t, "job-6", jobID(t, retry))

		// Core remembered a key the edge had lost: a replay, and kept.
		core.replayed.Store(true)
		fromCore, err := h.Create(ctx, user, Proto, jobRequest("k3", url), core.create)
		require.NoError(t, err)
		require.True(t, fromCore.Replayed)
		core.replayed.Store(false)
		kept, err := h.Create(ctx, user, Proto, jobRequest("k3", url), core.create)
		require.NoError(t, err)
		require.True(t, kept.Replayed)
		require.Equal(t, "job-7", kept.Msg.GetJob().GetId())
		require.EqualValues(t, 7, core.calls.Load())
	})
}

// TestCreateInUse: while the first request with a key is at core, a
// duplicate is refused; once it finished the duplicate is replayed.
func TestCreateInUse(t *testing.T) {
	onEach(t, func(t *testing.T, b backend) {
		h := newGate(t, b, 20)
		core := &fakeJobs{at: make(chan struct{}, 1), hold: make(chan struct{})}
		ctx, user := context.Background(), "user-"+rand.Text()
		done := make(chan error, 1)
		go func() {
			_, err := h.Create(ctx, user, JSON, jobRequest("k", "https://example.com/a"), core.create)
			done <- err
		}()
		waittest.Recv(t, core.at, 10*time.Second, "the first request never reached core")
		_, err := h.Create(ctx, user, Proto, jobRequest("k", "https://example.com/a"), core.create)
		refusal(t, err, KeyInUse, "idempotency_key_in_use")
		close(core.hold)
		require.NoError(t, waittest.Recv(t, done, 10*time.Second, "the first request never finished"))
		c, err := h.Create(ctx, user, Proto, jobRequest("k", "https://example.com/a"), core.create)
		require.NoError(t, err)
		require.True(t, c.Replayed)
		require.EqualValues(t, 1, core.calls.Load())
	})
}

// TestCreateReplaysACopyWithoutTheMessageThroughCore: an edge that kept only
// the REST body (an older one) left a copy Connect cannot send; Connect asks
// core, which replays, and REST still sends the copy.
func TestCreateReplaysACopyWithoutTheMessageThroughCore(t *testing.T) {
	onEach(t, func(t *testing.T, b backend) {
		h, core := newGate(t, b, 20), &fakeJobs{}
		ctx, user := context.Background(), "user-"+rand.Text()
		req := jobRequest("k", "https://example.com/a")
		fp := idempotency.Fingerprint(req)
		_, _, lock := h.Replays.Begin(ctx, user, "k", fp)
		require.NotNil(t, lock)
		lock.Finish(ctx, &replay.Response{Fingerprint: fp, Status: http.StatusAccepted, Body: []byte(`{"id":"old"}`)})

		c, err := h.Create(ctx, user, JSON, req, core.create)
		require.NoError(t, err)
		require.True(t, c.Replayed)
		require.Equal(t, "old", jobID(t, c))
		require.EqualValues(t, 0, core.calls.Load())

		core.replayed.Store(true) // core knows the key
		c, err = h.Create(ctx, user, Proto, req, core.create)
		require.NoError(t, err)
		require.True(t, c.Replayed)
		require.EqualValues(t, 1, core.calls.Load())
	})
}

// TestCreateWithoutRedisLeavesTheKeyToCore: Redis unreachable, the gate
// cannot tell a retry, so every request reaches core — which records the key
// with the job and replays (core's side, not tested here).
func TestCreateWithoutRedisLeavesTheKeyToCore(t *testing.T) {
	t.Parallel()
	rdb, _, err := redisx.Open("redis://127.0.0.1:1/0", nil) // nothing listens on port 1
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	h, core := newGate(t, backend{name: "down", rdb: rdb}, 20), &fakeJobs{}
	for range 2 {
		c, err := h.Create(context.Background(), "u1", JSON, jobRequest("k", "https://example.com/a"), core.create)
		require.NoError(t, err)
		require.False(t, c.Replayed)
	}
	require.EqualValues(t, 2, core.calls.Load())
}
