package rest

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/filename"
	"github.com/ytcaption/ytcaption/internal/idempotency"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// batchRoutes mounts the batch API: a playlist, a channel or a list of URLs,
// each entry an ordinary job (see docs/batches.md).
func (s *server) batchRoutes(v1 fiber.Router) {
	v1.Post("/batches", s.createBatch)
	v1.Get("/batches", s.listBatches)
	v1.Get("/batches/:id", s.getBatch)
	v1.Delete("/batches/:id", s.cancelBatch)
	v1.Get("/batches/:id/jobs", s.listBatchJobs)
	v1.Get("/batches/:id/captions.zip", s.batchCaptions)
	v1.Get("/batches/:id/events", s.batchEvents)
}

type batchBody struct {
	URL      string   `json:"url"`
	URLs     []string `json:"urls"`
	MaxItems int32    `json:"max_items"`
	Order    string   `json:"order"`
	After    string   `json:"after"`
	Before   string   `json:"before"`
	Language string   `json:"language"`
	Engine   string   `json:"engine"`
	Model    string   `json:"model"`
	Source   string   `json:"source"`
	Task     string   `json:"task"`
	Prompt   string   `json:"prompt"`
	Webhook  string   `json:"webhook_url"`
}

// batchCounts and batchJSON are a batch as the REST API shows it.
type batchCounts struct {
	Total     int32 `json:"total"`
	Queued    int32 `json:"queued"`
	Running   int32 `json:"running"`
	Succeeded int32 `json:"succeeded"`
	Failed    int32 `json:"failed"`
	Cancelled int32 `json:"cancelled"`
}

type batchJSON struct {
	ID           string      `json:"id"`
	Status       string      `json:"status"`
	URL          string      `json:"url"`
	CanonicalURL string      `json:"canonical_url"`
	MaxItems     int32       `json:"max_items"`
	Order        string      `json:"order"`
	After        string      `json:"after,omitempty"`
	Before       string      `json:"before,omitempty"`
	Language     string      `json:"language"`
	Engine       string      `json:"engine,omitempty"`
	Model        string      `json:"model,omitempty"`
	Source       string      `json:"source"`
	Task         string      `json:"task"`
	Entries      int32       `json:"entries"`
	Skipped      int32       `json:"skipped"`
	Counts       batchCounts `json:"counts"`
	Error        *errorInfo  `json:"error,omitempty"`
	CreatedAt    *time.Time  `json:"created_at,omitempty"`
	EnumeratedAt *time.Time  `json:"enumerated_at,omitempty"`
	FinishedAt   *time.Time  `json:"finished_at,omitempty"`
}

type errorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func batchFrom(b *ytcaptionv1.Batch) batchJSON {
	at := func(t interface{ AsTime() time.Time }, ok bool) *time.Time {
		if !ok {
			return nil
		}
		v := t.AsTime().UTC()
		return &v
	}
	c := b.GetCounts()
	out := batchJSON{
		ID: b.GetId(), Status: strings.ToLower(strings.TrimPrefix(b.GetStatus().String(), "BATCH_STATUS_")),
		URL: b.GetUrl(), CanonicalURL: b.GetCanonicalUrl(), MaxItems: b.GetMaxItems(), Order: b.GetOrder(), After: b.GetAfter(), Before: b.GetBefore(),
		Language: b.GetLanguage(), Engine: b.GetEngine(), Model: b.GetModel(), Source: b.GetSource(), Task: b.GetTask(),
		Entries: b.GetEntries(), Skipped: b.GetSkipped(),
		Counts: batchCounts{Total: c.GetTotal(), Queued: c.GetQueued(), Running: c.GetRunning(), Succeeded: c.GetSucceeded(),
			Failed: c.GetFailed(), Cancelled: c.GetCancelled()},
		CreatedAt: at(b.GetCreatedAt(), b.GetCreatedAt() != nil), EnumeratedAt: at(b.GetEnumeratedAt(), b.GetEnumeratedAt() != nil),
		FinishedAt: at(b.GetFinishedAt(), b.GetFinishedAt() != nil),
	}
	if b.GetErrorCode() != "" {
		out.Error = &errorInfo{Code: b.GetErrorCode(), Message: b.GetErrorMessage()}
	}
	return out
}

// createBatch records a batch. Its Idempotency-Key is kept by core, with the
// batch, in the transaction that creates it: a retry with the same key and
// body gets the first batch (Idempotent-Replayed: true), another body 422.
func (s *server) createBatch(c *fiber.Ctx) error {
	var b batchBody
	if err := s.decodeBody(c, &b); err != nil {
		return err
	}
	key := strings.Clone(c.Get("Idempotency-Key"))
	if key != "" && !idempotency.ValidKey(key) {
		return codedError(errcode.InvalidIdempotencyKey, fmt.Sprintf("Idempotency-Key must be 1 to %d printable ASCII characters", idempotency.MaxKeyLen))
	}
	ctx, cancel, req := call(s, c, &ytcaptionv1.CreateBatchRequest{Url: b.URL, Urls: b.URLs, MaxItems: b.MaxItems, Order: b.Order,
		After: b.After, Before: b.Before, Language: b.Language, Engine: b.Engine, Model: b.Model, Source: b.Source, Task: b.Task,
		Prompt: b.Prompt, WebhookUrl: b.Webhook, IdempotencyKey: key})
	defer cancel()
	resp, err := s.Core.Batches.CreateBatch(ctx, req)
	if err != nil {
		return err
	}
	if resp.Msg.GetReplayed() {
		c.Set("Idempotent-Replayed", "true")
	}
	return c.Status(fiber.StatusAccepted).JSON(batchFrom(resp.Msg.GetBatch()))
}

func (s *server) getBatch(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.GetBatchRequest{Id: strings.Clone(c.Params("id"))})
	defer cancel()
	resp, err := s.Core.Batches.GetBatch(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(batchFrom(resp.Msg.GetBatch()))
}

func (s *server) cancelBatch(c *fiber.Ctx) error {
	ctx, cancel, req := call(s, c, &ytcaptionv1.CancelBatchRequest{Id: strings.Clone(c.Params("id"))})
	defer cancel()
	resp, err := s.Core.Batches.CancelBatch(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(batchFrom(resp.Msg.GetBatch()))
}

func (s *server) listBatches(c *fiber.Ctx) error {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		return err
	}
	ctx, cancel, req := call(s, c, &ytcaptionv1.ListBatchesRequest{PageSize: int32(limit), PageToken: strings.Clone(c.Query("cursor"))})
	defer cancel()
	resp, err := s.Core.Batches.ListBatches(ctx, req)
	if err != nil {
		return err
	}
	out := struct {
		Batches    []batchJSON `json:"batches"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Batches: []batchJSON{}, NextCursor: resp.Msg.GetNextPageToken()}
	for _, b := range resp.Msg.GetBatches() {
		out.Batches = append(out.Batches, batchFrom(b))
	}
	return c.JSON(out)
}

func (s *server) listBatchJobs(c *fiber.Ctx) error {
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		return err
	}
	ctx, cancel, req := call(s, c, &ytcaptionv1.ListBatchJobsRequest{Id: strings.Clone(c.Params("id")), PageSize: int32(limit),
		PageToken: strings.Clone(c.Query("cursor"))})
	defer cancel()
	resp, err := s.Core.Batches.ListBatchJobs(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(jobPage(resp.Msg.GetJobs(), resp.Msg.GetNextPageToken()))
}

// maxZipBytes bounds a captions archive, built in memory: 1000 transcripts
// of an hour each fit several times over.
const maxZipBytes = 64 << 20

// batchCaptions answers one archive with a caption file per succeeded child,
// named after its title. Titles are the sites' (and so anyone's): names are
// cleaned (safeName) and made unique. The format and render options are a
// transcript's (format, max_line_chars, max_lines, karaoke).
func (s *server) batchCaptions(c *fiber.Ctx) error {
	opts, name, err := transcriptRequest(c, "")
	if err != nil {
		return err
	}
	id := strings.Clone(c.Params("id"))
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Minute)
	defer cancel()
	var children []*ytcaptionv1.Job
	for token := ""; ; {
		resp, err := s.Core.Batches.ListBatchJobs(ctx, coreRequest(c, &ytcaptionv1.ListBatchJobsRequest{Id: id, PageSize: 1000, PageToken: token}))
		if err != nil {
			return err
		}
		children = append(children, resp.Msg.GetJobs()...)
		if token = resp.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	used := map[string]bool{}
	files := 0
	for _, j := range children {
		if j.GetStatus() != ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED {
			continue
		}
		msg := proto.CloneOf(opts)
		msg.Id = j.GetId()
		resp, err := s.Core.Jobs.GetTranscript(ctx, coreRequest(c, msg))
		if err != nil {
			return err
		}
		w, err := zw.Create(filename.Unique(used, filename.Safe(j.GetMedia().GetTitle(), j.GetId()), name))
		if err == nil {
			_, err = w.Write(resp.Msg.GetContent())
		}
		if err != nil {
			return fmt.Errorf("zip captions: %w", err)
		}
		if files++; buf.Len() > maxZipBytes {
			return codedError(errcode.InvalidArgument, fmt.Sprintf("the batch's captions are larger than %d MiB: fetch them per job", maxZipBytes>>20))
		}
	}
	if files == 0 {
		return codedError(errcode.NotReady, "no job of this batch has succeeded yet")
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip captions: %w", err)
	}
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="batch-`+id+`-`+name+`.zip"`)
	return c.Send(buf.Bytes())
}
