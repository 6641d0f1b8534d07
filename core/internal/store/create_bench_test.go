package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

// BenchmarkCreations is the store's share of a creation: 64 creations in
// flight, back to back, through CreateJobOnce (group commit), beside the
// same rows inserted by plain SQL, 16 to a statement, 4 statements at once
// — what the edge benchmark's creations would reach if HTTP cost nothing.
func BenchmarkCreations(b *testing.B) {
	for _, d := range storetest.Drivers {
		b.Run(d.Name, func(b *testing.B) {
			e := storetest.New(b, d)
			for b.Loop() {
				viaStore := creationsFor(5*time.Second, 64, func(ctx context.Context) (int, error) {
					_, _, err := e.Store.CreateJobOnce(ctx, store.NewJob{UserID: e.User.ID, URL: "http://127.0.0.1:9/a.ogg",
						CanonicalURL: "http://127.0.0.1:9/a.ogg", SourceKind: job.SourceHTTP, Source: job.SourceAuto,
						Language: "auto", Task: "transcribe", MaxAttempts: 3})
					return 1, err
				})
				plain := creationsFor(5*time.Second, 4, func(ctx context.Context) (int, error) {
					_, err := e.DB.Exec(ctx, plainRows, e.User.ID, "http://127.0.0.1:9/a.ogg")
					return plainBatch, err
				})
				fmt.Printf("creations on %s, 64 in flight: store %7.0f/s, plain SQL %7.0f/s, store ÷ plain %.2f\n",
					d.Name, viaStore, plain, viaStore/plain)
				b.ReportMetric(viaStore, "creations/s")
				b.ReportMetric(viaStore/plain, "store/plain")
			}
		})
	}
}

// plainRows inserts plainBatch jobs in one statement, with only the columns
// that have no default: plain SQL at its cheapest.
const plainBatch = 16

var plainRows = `INSERT INTO jobs (user_id, status, url, canonical_url, source_kind) VALUES ` +
	strings.Repeat(`($1, 'queued', $2, $2, 'http'), `, plainBatch-1) + `($1, 'queued', $2, $2, 'http')`

// creationsFor runs create from workers goroutines for d and returns the
// rows created a second.
func creationsFor(d time.Duration, workers int, create func(context.Context) (int, error)) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if k, err := create(ctx); err == nil {
					n.Add(int64(k))
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
