package fetch

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/proxytest"
)

// standInProxy is a plain-HTTP forward proxy that forwards while healthy and,
// while blocked, answers every request as a rate-limited site does: 429.
type standInProxy struct {
	*httptest.Server
	blocked atomic.Bool
	seen    atomic.Int64
}

func newStandInProxy(t *testing.T) *standInProxy {
	t.Helper()
	p := &standInProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.seen.Add(1)
		if p.blocked.Load() {
			http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
			return
		}
		proxytest.Forward(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestABlockedProxyRestsAndTheJobGoesThroughTheNext drives the real yt-dlp
// through two stand-in outbound proxies. The first answers like a blocked
// one: it rests and the same attempt succeeds through the second. When both
// are blocked the job is parked — queued, no attempt spent, not claimable —
// and once a proxy has rested and works again the job is done.
func TestABlockedProxyRestsAndTheJobGoesThroughTheNext(t *testing.T) {
	m := makeMedia(t)
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		src := pageSource(t, m)
		blocked, healthy := newStandInProxy(t), newStandInProxy(t)
		blocked.blocked.Store(true)
		h := newHarness(t, open, Config{})
		h.stage.ytdlp = ytdlp.New(ytdlp.Config{Policy: egress.Policy{AllowPrivate: true}, Extractors: "generic,html5"})
		// Rests run on the real clock (the parked job's run_after does): long
		// enough that the job parks for a while, short enough to wait out.
		const rest = 5 * time.Second
		pool, err := outbound.New(context.Background(), slog.New(slog.DiscardHandler),
			outbound.Config{Proxies: []string{blocked.URL, healthy.URL}, RateLimitRest: rest, MaxRest: rest}, nil, nil)
		require.NoError(t, err)
		h.stage.routes = pool

		j := h.create(t, job.SourceSite, src+"/talk", 1)
		h.stage.process(context.Background(), h.claim(t, j.ID))
		j = h.get(t, j.ID)
		require.Equal(t, job.StatusReady, j.Status, "%s: %s", j.ErrorCode, j.ErrorMessage)
		require.Positive(t, blocked.seen.Load(), "the first route was tried")
		require.Positive(t, healthy.seen.Load(), "the job went through the second")
		// Who was refused, not whether the rest is still on: that depends on
		// how long yt-dlp took (outbound's own tests time rests exactly).
		require.Equal(t, job.CodeRateLimited, entry(pool, blocked.Listener.Addr().String()).LastCode, "the blocked proxy was refused, and rested")
		require.False(t, entry(pool, healthy.Listener.Addr().String()).LastSuccess.IsZero(), "the healthy one served the job")

		// Both blocked: the job is parked, not failed, and waits.
		healthy.blocked.Store(true)
		j = h.create(t, job.SourceSite, src+"/talk", 1)
		h.stage.process(context.Background(), h.claim(t, j.ID))
		j = h.get(t, j.ID)
		require.Equal(t, job.StatusQueued, j.Status, "%s: %s", j.ErrorCode, j.ErrorMessage)
		require.Empty(t, h.attempts(t, j.ID), "parking spends no attempt")
		h.requireNotClaimable(t)

		// A proxy recovers. Each time the first route wakes the job is
		// claimable again; it may be parked once more (the still-blocked
		// proxy woke first, the recovered one still rests), but never fails,
		// and once the recovered proxy is awake the job is done.
		healthy.blocked.Store(false)
		for round := 0; h.get(t, j.ID).Status != job.StatusReady; round++ {
			require.Less(t, round, 5, "the job is still parked")
			var again job.Job
			require.Eventually(t, func() bool {
				var ok bool
				again, ok, err = h.env.Store.ClaimQueued(context.Background(), testOwner, time.Minute)
				require.NoError(t, err)
				return ok
			}, 30*time.Second, 50*time.Millisecond, "the parked job comes back when the first route wakes")
			require.Equal(t, j.ID, again.ID)
			h.stage.process(context.Background(), again)
			require.Contains(t, []job.Status{job.StatusQueued, job.StatusReady}, h.get(t, j.ID).Status)
		}
		require.Empty(t, h.attempts(t, j.ID), "parking spent no attempt")
		h.requireClean(t)
	})
}

func entry(p *outbound.Pool, hostPort string) outbound.EntryHealth {
	for _, e := range p.Health() {
		if e.Name == hostPort {
			return e
		}
	}
	panic("no pool entry " + hostPort)
}
