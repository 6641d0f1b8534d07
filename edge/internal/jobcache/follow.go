package jobcache

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/ytcaption/ytcaption/internal/backoff"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// Follow keeps the cache true to core's change feed until ctx ends: while
// the stream is open the cache keeps running jobs too and drops each job the
// feed names; when it breaks, the cache keeps finished jobs only until the
// stream is back (retried with backoff, so an older core without the feed
// costs one refused call now and then).
func (c *Cache) Follow(ctx context.Context, log *slog.Logger, client ytcaptionv1connect.EdgeServiceClient) {
	if c.ttl <= 0 {
		return
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if c.follow(ctx, client) {
			attempt = 0 // it worked for a while: start the backoff over
		}
		if ctx.Err() != nil {
			return
		}
		d := backoff.Full(attempt+1, 100*time.Millisecond, 30*time.Second)
		log.WarnContext(ctx, "job change feed lost; running jobs are read from core until it is back", "retry_in", d)
		backoff.Sleep(ctx, d)
	}
}

// follow reads one stream until it ends; live says whether it got as far as
// its first message.
func (c *Cache) follow(ctx context.Context, client ytcaptionv1connect.EdgeServiceClient) (live bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.WatchJobChanges(ctx, connect.NewRequest(&ytcaptionv1.WatchJobChangesRequest{}))
	if err != nil {
		return false
	}
	defer stream.Close()
	defer func() {
		if live {
			c.setLive(false)
		}
	}()
	for stream.Receive() {
		msg := stream.Msg()
		if msg.GetForgetAll() {
			// The first message, or changes missed: from here the feed names
			// every change.
			c.setLive(true)
			live = true
		}
		if len(msg.GetJobIds()) > 0 {
			c.Forget(msg.GetJobIds()...)
		}
	}
	return live
}
