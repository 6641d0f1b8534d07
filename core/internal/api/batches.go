package api

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/mediaurl"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/idempotency"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// MaxBatchURLs bounds a list batch: each URL is validated and becomes a job
// in one transaction.
const MaxBatchURLs = 500

// BatchService implements ytcaptionv1connect.BatchServiceHandler with the
// JobService's checks: a child is validated as CreateJob validates a job.
type BatchService struct{ jobs *JobService }

var batchStatusToProto = map[string]ytcaptionv1.BatchStatus{
	store.BatchEnumerating: ytcaptionv1.BatchStatus_BATCH_STATUS_ENUMERATING,
	store.BatchRunning:     ytcaptionv1.BatchStatus_BATCH_STATUS_RUNNING,
	store.BatchDone:        ytcaptionv1.BatchStatus_BATCH_STATUS_DONE,
	store.BatchFailed:      ytcaptionv1.BatchStatus_BATCH_STATUS_FAILED,
	store.BatchCancelled:   ytcaptionv1.BatchStatus_BATCH_STATUS_CANCELLED,
}

// BatchToProto is a batch as the API shows it.
func BatchToProto(b store.Batch) *ytcaptionv1.Batch {
	o, c := b.Options, b.Counts
	return &ytcaptionv1.Batch{
		Id: b.ID, Status: batchStatusToProto[b.Status], Url: b.URL, CanonicalUrl: b.CanonicalURL, MaxItems: int32(b.MaxItems),
		Order: b.Order, After: dashed(b.After), Before: dashed(b.Before),
		Language: o.Language, Engine: o.Engine, Model: o.Model, Source: string(o.Source), Task: o.Task, Prompt: o.Prompt, WebhookUrl: o.WebhookURL,
		Entries: int32(b.Entries), Skipped: int32(b.Skipped),
		Counts: &ytcaptionv1.BatchCounts{Total: int32(c.Total), Queued: int32(c.Queued), Running: int32(c.Running),
			Succeeded: int32(c.Succeeded), Failed: int32(c.Failed), Cancelled: int32(c.Cancelled)},
		ErrorCode: b.ErrorCode, ErrorMessage: b.ErrorMessage,
		CreatedAt: ts(b.CreatedAt), EnumeratedAt: ts(b.EnumeratedAt), FinishedAt: ts(b.FinishedAt),
	}
}

// dashed turns YYYYMMDD (yt-dlp's form, stored) into YYYY-MM-DD.
func dashed(d string) string {
	if len(d) != 8 {
		return d
	}
	return d[:4] + "-" + d[4:6] + "-" + d[6:]
}

// parseDate reads a YYYY-MM-DD bound into yt-dlp's YYYYMMDD.
func parseDate(name, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return "", job.Errorf(job.CodeInvalidArgument, "%s must be a date YYYY-MM-DD, got %q", name, s)
	}
	return t.Format("20060102"), nil
}

func (s *BatchService) CreateBatch(ctx context.Context, req *connect.Request[ytcaptionv1.CreateBatchRequest]) (*connect.Response[ytcaptionv1.CreateBatchResponse], error) {
	js := s.jobs
	if err := js.intakeOpen(); err != nil {
		return nil, toConnectError(ctx, js.log, err)
	}
	n, err := s.newBatch(ctx, req.Msg)
	if err != nil {
		return nil, toConnectError(ctx, js.log, err)
	}
	b, replayed, err := js.store.CreateBatch(ctx, n)
	if err != nil {
		return nil, toConnectError(ctx, js.log, err)
	}
	if replayed {
		js.log.InfoContext(ctx, "batch request replayed", "batch_id", b.ID)
	} else {
		js.log.InfoContext(ctx, "batch created", "batch_id", b.ID, "children", b.Counts.Total, "status", b.Status)
	}
	return connect.NewResponse(&ytcaptionv1.CreateBatchResponse{Batch: BatchToProto(b), Replayed: replayed}), nil
}

// newBatch validates a request into what the store records: the source or
// every URL, the bounds, and the children's options as CreateJob checks a
// job's.
func (s *BatchService) newBatch(ctx context.Context, m *ytcaptionv1.CreateBatchRequest) (store.NewBatch, error) {
	js := s.jobs
	n := store.NewBatch{UserID: userID(ctx), MaxItems: int(m.GetMaxItems()), Order: m.GetOrder(), IdempotencyKey: m.GetIdempotencyKey()}
	switch {
	case m.GetUrl() != "" && len(m.GetUrls()) > 0:
		return n, job.Errorf(job.CodeInvalidArgument, "give url (a playlist or channel) or urls (a list), not both")
	case m.GetUrl() == "" && len(m.GetUrls()) == 0:
		return n, job.Errorf(job.CodeInvalidURL, "a url (a playlist or channel) or urls (a list of videos) is required")
	case len(m.GetUrls()) > MaxBatchURLs:
		return n, job.Errorf(job.CodeInvalidArgument, "a batch takes at most %d URLs, got %d", MaxBatchURLs, len(m.GetUrls()))
	case m.GetMaxItems() < 0 || m.GetMaxItems() > store.MaxBatchItems:
		return n, job.Errorf(job.CodeInvalidArgument, "max_items must be between 1 and %d (0: 100), got %d", store.MaxBatchItems, m.GetMaxItems())
	case n.Order != "" && n.Order != store.OrderPlaylist && n.Order != store.OrderNewest:
		return n, job.Errorf(job.CodeInvalidArgument, "order must be playlist or newest, got %q", n.Order)
	case n.IdempotencyKey != "" && !idempotency.ValidKey(n.IdempotencyKey):
		return n, job.Errorf(job.CodeInvalidArgument, "an idempotency key is 1 to %d printable ASCII characters", idempotency.MaxKeyLen)
	}
	var err error
	if n.After, err = parseDate("after", m.GetAfter()); err != nil {
		return n, err
	}
	if n.Before, err = parseDate("before", m.GetBefore()); err != nil {
		return n, err
	}
	if n.After != "" && n.Before != "" && n.After > n.Before {
		return n, job.Errorf(job.CodeInvalidArgument, "after (%s) is later than before (%s)", m.GetAfter(), m.GetBefore())
	}
	lang := m.GetLanguage()
	if lang == "" {
		lang = "auto"
	}
	if err := checkOptions(lang, m.GetEngine(), m.GetModel(), m.GetTask(), m.GetPrompt()); err != nil {
		return n, err
	}
	source, err := job.ParseSource(m.GetSource())
	if err != nil {
		return n, err
	}
	if m.GetWebhookUrl() != "" {
		if err := js.checkWebhookURL(m.GetWebhookUrl()); err != nil {
			return n, err
		}
	}
	if err := js.checkOffered(ctx, want(lang, m.GetEngine(), m.GetModel(), m.GetTask(), m.GetPrompt())); err != nil {
		return n, err
	}
	n.Options = store.BatchOptions{Language: lang, Engine: m.GetEngine(), Model: m.GetModel(), Source: source, Task: m.GetTask(),
		Prompt: m.GetPrompt(), WebhookURL: m.GetWebhookUrl()}
	if m.GetUrl() != "" {
		src, err := mediaurl.ParseBatch(m.GetUrl())
		if err == nil {
			err = js.checkLiteralAddress(src.URL)
		}
		if err != nil {
			return n, err
		}
		n.URL, n.CanonicalURL = m.GetUrl(), src.URL
	} else {
		n.Entries = make([]store.BatchEntry, 0, len(m.GetUrls()))
		seen := map[string]bool{}
		for i, raw := range m.GetUrls() {
			src, err := mediaurl.Parse(raw)
			if err == nil {
				err = js.checkLiteralAddress(src.URL)
			}
			if err == nil && source == job.SourceCaptions && src.Kind != job.SourceYouTube && src.Kind != job.SourceSite {
				err = job.Errorf(job.CodeInvalidArgument, "source \"captions\" needs videos on YouTube or another site: files have no captions to take")
			}
			if err != nil {
				je := err.(*job.Error)
				return n, &job.Error{Code: je.Code, Message: fmt.Sprintf("urls[%d]: %s", i, je.Message), Err: je.Err}
			}
			if seen[src.URL] {
				continue // the same video twice is one child
			}
			seen[src.URL] = true
			n.Entries = append(n.Entries, store.BatchEntry{URL: raw, CanonicalURL: src.URL, SourceKind: src.Kind})
		}
	}
	n.Fingerprint = idempotency.Fingerprint(m)
	return n, nil
}

func (s *BatchService) GetBatch(ctx context.Context, req *connect.Request[ytcaptionv1.GetBatchRequest]) (*connect.Response[ytcaptionv1.GetBatchResponse], error) {
	b, err := s.jobs.store.GetBatch(ctx, userID(ctx), req.Msg.GetId())
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, err)
	}
	return connect.NewResponse(&ytcaptionv1.GetBatchResponse{Batch: BatchToProto(b)}), nil
}

func (s *BatchService) ListBatches(ctx context.Context, req *connect.Request[ytcaptionv1.ListBatchesRequest]) (*connect.Response[ytcaptionv1.ListBatchesResponse], error) {
	size := int(req.Msg.GetPageSize())
	switch {
	case size == 0:
		size = 20
	case size < 0 || size > 100:
		return nil, toConnectError(ctx, s.jobs.log, job.Errorf(job.CodeInvalidArgument, "page size must be between 1 and 100, got %d", size))
	}
	bs, err := s.jobs.store.ListBatches(ctx, userID(ctx), size+1, req.Msg.GetPageToken())
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, err)
	}
	resp := &ytcaptionv1.ListBatchesResponse{}
	if len(bs) > size {
		bs = bs[:size]
		resp.NextPageToken = bs[size-1].ID
	}
	for _, b := range bs {
		resp.Batches = append(resp.Batches, BatchToProto(b))
	}
	return connect.NewResponse(resp), nil
}

func (s *BatchService) ListBatchJobs(ctx context.Context, req *connect.Request[ytcaptionv1.ListBatchJobsRequest]) (*connect.Response[ytcaptionv1.ListBatchJobsResponse], error) {
	size := int(req.Msg.GetPageSize())
	switch {
	case size == 0:
		size = 100
	case size < 0 || size > store.MaxBatchItems:
		return nil, toConnectError(ctx, s.jobs.log, job.Errorf(job.CodeInvalidArgument, "page size must be between 1 and %d, got %d", store.MaxBatchItems, size))
	}
	offset := 0
	if t := req.Msg.GetPageToken(); t != "" {
		var err error
		if offset, err = strconv.Atoi(t); err != nil || offset < 0 || offset > store.MaxBatchItems {
			return nil, toConnectError(ctx, s.jobs.log, job.Errorf(job.CodeInvalidArgument, "the page token is not one this API returned"))
		}
	}
	jobs, err := s.jobs.store.ListBatchJobs(ctx, userID(ctx), req.Msg.GetId(), size+1, offset)
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, err)
	}
	resp := &ytcaptionv1.ListBatchJobsResponse{}
	if len(jobs) > size {
		jobs = jobs[:size]
		resp.NextPageToken = strconv.Itoa(offset + size)
	}
	for _, j := range jobs {
		resp.Jobs = append(resp.Jobs, JobToProto(j))
	}
	return connect.NewResponse(resp), nil
}

func (s *BatchService) CancelBatch(ctx context.Context, req *connect.Request[ytcaptionv1.CancelBatchRequest]) (*connect.Response[ytcaptionv1.CancelBatchResponse], error) {
	b, err := s.jobs.store.CancelBatch(ctx, userID(ctx), req.Msg.GetId())
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, err)
	}
	s.jobs.log.InfoContext(ctx, "batch cancelled", "batch_id", b.ID)
	return connect.NewResponse(&ytcaptionv1.CancelBatchResponse{Batch: BatchToProto(b)}), nil
}
