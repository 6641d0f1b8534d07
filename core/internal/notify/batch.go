package notify

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// subject reads what m is about — its job, or for a batch's end the batch
// (the outbox names the batch's first job: store.FinishBatches) — and the
// JSON a webhook carries as its data.
func (n *Notifier) subject(ctx context.Context, m store.Notification) (job.Job, []byte, error) {
	if m.Event == store.BatchDoneEvent {
		b, err := n.store.BatchOfJob(ctx, m.JobID)
		if err != nil {
			return job.Job{}, nil, err
		}
		data, err := json.Marshal(batchPayloadOf(b))
		return job.Job{}, data, err
	}
	j, err := n.store.GetJob(ctx, "", m.JobID)
	if err != nil {
		return job.Job{}, nil, err
	}
	data, err := n.render(j)
	return j, data, err
}

// BatchCounts and BatchPayload are a batch in a batch.done webhook: the
// fields of GET /v1/batches/{id} a receiver acts on.
type BatchCounts struct {
	Total     int `json:"total"`
	Queued    int `json:"queued"`
	Running   int `json:"running"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
}

type BatchPayload struct {
	ID           string      `json:"id"`
	Status       string      `json:"status"`
	URL          string      `json:"url"`
	CanonicalURL string      `json:"canonical_url"`
	Entries      int         `json:"entries"`
	Skipped      int         `json:"skipped"`
	Counts       BatchCounts `json:"counts"`
	CreatedAt    time.Time   `json:"created_at"`
	FinishedAt   time.Time   `json:"finished_at"`
}

func batchPayloadOf(b store.Batch) BatchPayload {
	c := b.Counts
	return BatchPayload{ID: b.ID, Status: b.Status, URL: b.URL, CanonicalURL: b.CanonicalURL, Entries: b.Entries, Skipped: b.Skipped,
		Counts:    BatchCounts{Total: c.Total, Queued: c.Queued, Running: c.Running, Succeeded: c.Succeeded, Failed: c.Failed, Cancelled: c.Cancelled},
		CreatedAt: b.CreatedAt.UTC(), FinishedAt: b.FinishedAt.UTC()}
}
