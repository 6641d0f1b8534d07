package gate

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/ratelimit"
	"github.com/ytcaption/ytcaption/edge/internal/redisx"
	"github.com/ytcaption/ytcaption/edge/internal/replay"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// fakeAuth is core's AuthService in process: keys starting "good" are
// valid, each its own user and key; "tight" keys carry a plan of one create a
// second in bursts of two, and at most one event stream.
type fakeAuth struct{ down atomic.Bool }

func (f *fakeAuth) Authenticate(_ context.Context, req *connect.Request[ytcaptionv1.AuthenticateRequest]) (*connect.Response[ytcaptionv1.AuthenticateResponse], error) {
	if f.down.Load() {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("database down"))
	}
	k := req.Msg.GetApiKey()
	switch {
	case strings.HasPrefix(k, "good"):
		return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: "user-" + k, Role: "user"}), nil
	case strings.HasPrefix(k, "tight"):
		return connect.NewResponse(&ytcaptionv1.AuthenticateResponse{UserId: "user-" + k, Role: "user",
			RateLimits: &ytcaptionv1.RateLimits{Create: &ytcaptionv1.RateLimit{PerSecond: 1, Burst: 2}, MaxStreams: 1}}), nil
	}
	return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("invalid API key"))
}

// backend is where the limits and replay copies live: the shared Redis (the
// edge's production setup; YTCAPTION_TEST_REDIS_URL, default the local
// server) or the edge's memory (a single box without Redis). Tests keep
// apart on the shared server by random keys, users and addresses.
type backend struct {
	name string
	rdb  *redis.Client
}

func backends(t *testing.T) []backend {
	t.Helper()
	url := os.Getenv("YTCAPTION_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	rdb, _, err := redisx.Open(url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, rdb.Ping(ctx).Err(), "the tests need the Redis at %s", url)
	return []backend{{"redis", rdb}, {"memory", nil}}
}

// onEach runs test on every backend, in parallel.
func onEach(t *testing.T, test func(t *testing.T, b backend)) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

type harness struct {
	*Gate
	core *fakeAuth
}

// newGate is a gate as edge.New builds it, on b, allowing refusedBurst
// refused keys per address.
func newGate(t *testing.T, b backend, refusedBurst int) harness {
	t.Helper()
	rdb, br, err := redisx.Open("", nil) // the breaker; the client is b's
	require.NoError(t, err)
	require.Nil(t, rdb)
	core := &fakeAuth{}
	limiter := ratelimit.New(b.rdb, br, nil)
	guard := auth.NewGuard(auth.New(core, time.Minute, time.Minute), limiter,
		ratelimit.Limit{Name: "failed_auth", Rate: 1, Burst: refusedBurst, Period: time.Hour})
	g := New(slog.New(slog.DiscardHandler), Config{MaxStreams: 2}, Deps{Guard: guard, Limiter: limiter,
		Streams: ratelimit.NewStreams(nil), Replays: replay.New(b.rdb, br)})
	return harness{Gate: g, core: core}
}

// randomAddr is a client address no other test uses (its own IPv6 /64).
func randomAddr() netip.Addr {
	var a [16]byte
	a[0], a[1] = 0x20, 0x01
	binary.BigEndian.PutUint64(a[2:10], binary.BigEndian.Uint64([]byte(rand.Text()[:8])))
	return netip.AddrFrom16(a)
}

func refusal(t *testing.T, err error, kind Kind, code string) *Error {
	t.Helper()
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, kind, e.Kind, e.Message)
	require.Equal(t, code, e.Code)
	require.NotEmpty(t, e.Message)
	return e
}

func TestAuthenticate(t *testing.T) {
	onEach(t, func(t *testing.T, b backend) {
		h := newGate(t, b, 2)
		ctx, addr := context.Background(), randomAddr()
		key := "good-" + rand.Text()

		p, err := h.Authenticate(ctx, "Bearer "+key, addr)
		require.NoError(t, err)
		require.Equal(t, "user-"+key, p.UserID)
		p, err = h.Authenticate(ctx, "bearer   "+key+" ", addr)
		require.NoError(t, err, "the scheme is case-insensitive, the key trimmed")
		require.Equal(t, "user-"+key, p.UserID)

		for _, header := range []string{"", "Bearer", "Bearer ", "Basic " + key, key} {
			_, err := h.Authenticate(ctx, header, addr)
			refusal(t, err, Unauthenticated, "unauthorized")
		}

		// Refused keys spend the address's budget (2); then any key
		// not already known valid is turned away before core is asked.
		for range 2 {
			_, err := h.Authenticate(ctx, "Bearer made-up-"+rand.Text(), addr)
			refusal(t, err, Unauthenticated, "unauthorized")
		}
		_, err = h.Authenticate(ctx, "Bearer made-up-"+rand.Text(), addr)
		e := refusal(t, err, Exhausted, "rate_limited")
		require.Equal(t, "3600", e.Header.Get("Retry-After"), "one refusal an hour: the next in 3600 s")
		_, err = h.Authenticate(ctx, "Bearer good-"+rand.Text(), addr)
		refusal(t, err, Exhausted, "rate_limited")
		_, err = h.Authenticate(ctx, "Bearer "+key, addr)
		require.NoError(t, err, "a key already known valid still works from the address")
		_, err = h.Authenticate(ctx, "Bearer made-up-"+rand.Text(), randomAddr())
		refusal(t, err, Unauthenticated, "unauthorized") // other addresses are not limited

		h.core.down.Store(true)
		_, err = h.Authenticate(ctx, "Bearer good-"+rand.Text(), randomAddr())
		refusal(t, err, Unavailable, "unavailable")
	})
}

func TestLimit(t *testing.T) {
	onEach(t, func(t *testing.T, b backend) {
		h := newGate(t, b, 20)
		ctx := context.Background()
		tight, err := h.Authenticate(ctx, "Bearer tight-"+rand.Text(), randomAddr())
		require.NoError(t, err)

		for i := range 2 {
			hdr, err := h.Limit(ctx, tight, true)
			require.NoError(t, err, "creation %d of the burst", i+1)
			require.Equal(t, `"create";q=2;w=2`, hdr.Get("RateLimit-Policy"))
			require.True(t, strings.HasPrefix(hdr.Get("RateLimit"), fmt.Sprintf(`"create";r=%d;t=`, 1-i)), hdr.Get("RateLimit"))
		}
		hdr, err := h.Limit(ctx, tight, true)
		e := refusal(t, err, Exhausted, "rate_limited")
		require.Equal(t, `"create";q=2;w=2`, hdr.Get("RateLimit-Policy"), "a refusal describes the bucket too")
		require.Equal(t, hdr.Get("RateLimit-Policy"), e.Header.Get("RateLimit-Policy"))
		require.True(t, strings.HasPrefix(e.Header.Get("RateLimit"), `"create";r=0;t=`), e.Header.Get("RateLimit"))
		require.Equal(t, "1", e.Header.Get("Retry-After"), "one creation a second: retry in 1 s")
		require.Contains(t, e.Message, "too many create requests")

		// Reads have their own bucket: the plan sets none, so the
		// defaults apply.
		hdr, err = h.Limit(ctx, tight, false)
		require.NoError(t, err)
		require.Equal(t, `"read";q=200;w=2`, hdr.Get("RateLimit-Policy"))

		// A principal without limits (an older core) gets the defaults.
		good, err := h.Authenticate(ctx, "Bearer good-"+rand.Text(), randomAddr())
		require.NoError(t, err)
		hdr, err = h.Limit(ctx, good, true)
		require.NoError(t, err)
		require.Equal(t, `"create";q=20;w=2`, hdr.Get("RateLimit-Policy"))
	})
}

func TestStream(t *testing.T) {
	t.Parallel()
	h := newGate(t, backend{name: "memory"}, 20)
	ctx := context.Background()
	good, err := h.Authenticate(ctx, "Bearer good-"+rand.Text(), randomAddr())
	require.NoError(t, err)

	r1, err := h.Stream(good)
	require.NoError(t, err)
	_, err = h.Stream(good)
	require.NoError(t, err)
	e := refusal(t, h.streamErr(good), Exhausted, "too_many_streams")
	require.Contains(t, e.Message, "2 open event streams", "Config.MaxStreams when the plan sets none")
	r1()
	r1() // twice gives back one place only
	_, err = h.Stream(good)
	require.NoError(t, err, "a released place is free again")
	refusal(t, h.streamErr(good), Exhausted, "too_many_streams")

	tight, err := h.Authenticate(ctx, "Bearer tight-"+rand.Text(), randomAddr())
	require.NoError(t, err)
	_, err = h.Stream(tight)
	require.NoError(t, err)
	e = refusal(t, h.streamErr(tight), Exhausted, "too_many_streams")
	require.Contains(t, e.Message, "1 open event streams", "the plan's cap")
}

// streamErr is Stream's refusal; it fails the test if a place was given.
func (h harness) streamErr(p auth.Principal) error {
	release, err := h.Stream(p)
	if err == nil {
		release()
		return errors.New("a place was given past the cap")
	}
	return err
}

func TestRequestIDAndForward(t *testing.T) {
	t.Parallel()
	require.Equal(t, "req-1:a.b_C", RequestID("req-1:a.b_C"))
	for _, bad := range []string{"", "has space", "new\nline", strings.Repeat("x", 129), "ünï"} {
		id := RequestID(bad)
		require.NotEqual(t, bad, id)
		require.Equal(t, id, RequestID(id), "a made id is itself sane")
	}
	req := Forward(Caller{Principal: auth.Principal{UserID: "u1"}, RequestID: "r1"}, &ytcaptionv1.GetJobRequest{Id: "j"})
	require.Equal(t, "u1", req.Header().Get(svcauth.UserHeader))
	require.Equal(t, "r1", req.Header().Get(HeaderRequestID))
	require.Equal(t, "j", req.Msg.GetId())
}
