package notify_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/notify"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// TestABatchsEndIsPostedSigned: when a batch's last job ends, its
// webhook_url gets one batch.done with the batch and its counts, signed like
// every webhook (checked by the Standard Webhooks reference library).
func TestABatchsEndIsPostedSigned(t *testing.T) {
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		r := &receiver{codes: []int{204}}
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		s, a := setup(t, open, notify.Config{Schedule: []time.Duration{time.Millisecond}})
		ctx := context.Background()
		b, _, err := s.CreateBatch(ctx, store.NewBatch{UserID: a.ID, Options: store.BatchOptions{WebhookURL: srv.URL + "/batch"},
			Entries: []store.BatchEntry{{URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: "http"}}})
		require.NoError(t, err)
		kids, err := s.ListBatchJobs(ctx, a.ID, b.ID, 10, 0)
		require.NoError(t, err)
		_, err = s.CancelJob(ctx, a.ID, kids[0].ID)
		require.NoError(t, err)
		ended, err := s.FinishBatches(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{b.ID}, ended)

		var got notify.Payload
		require.Eventually(t, func() bool {
			for _, d := range r.deliveries() {
				require.NoError(t, json.Unmarshal([]byte(d.Body), &got))
				if got.Type == store.BatchDoneEvent {
					return true
				}
			}
			return false
		}, 10*time.Second, 10*time.Millisecond)
		var data notify.BatchPayload
		require.NoError(t, json.Unmarshal(got.Data, &data))
		require.Equal(t, b.ID, data.ID)
		require.Equal(t, store.BatchDone, data.Status)
		require.Equal(t, notify.BatchCounts{Total: 1, Cancelled: 1}, data.Counts)
		ds := r.deliveries()
		verdicts := verify(t, a.WebhookSecret, ds)
		require.Len(t, verdicts, len(ds))
		for _, verdict := range verdicts {
			require.Equal(t, "ok", verdict)
		}
	})
}
