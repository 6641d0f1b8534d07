package notify_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/notify"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// TestWebhookWithAZoneIsNeverDelivered: the webhook case. A zone id
// on a loopback webhook URL is refused by the one address policy even with
// private addresses allowed (as setup allows them), so the receiver on
// loopback sees nothing and the delivery fails with the policy's reason.
func TestWebhookWithAZoneIsNeverDelivered(t *testing.T) {
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		ln, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skip("no IPv6 loopback on this host")
		}
		r := &receiver{codes: []int{204}}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}}
		srv.Start()
		defer srv.Close()
		port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

		s, a := setup(t, open, notify.Config{Schedule: []time.Duration{10 * time.Millisecond}})
		ctx := context.Background()
		target := "http://[::1%25lo]:" + port + "/hooks"
		j, err := s.CreateJob(ctx, store.NewJob{UserID: a.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg",
			SourceKind: job.SourceHTTP, WebhookURL: target})
		require.NoError(t, err)
		_, err = s.CancelJob(ctx, a.ID, j.ID)
		require.NoError(t, err)
		n := waitNotification(t, s, j.ID, "failed")
		require.Equal(t, target, n.Target)
		require.Contains(t, n.Log[0].Error, "address not allowed")
		require.Empty(t, r.deliveries(), "the loopback receiver saw a delivery")
	})
}
