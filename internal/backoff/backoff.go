// Package backoff is ytcaption's one retry delay — capped exponential
// backoff with full jitter — and the context-aware wait for it. Full jitter (a
// uniform draw from zero to the attempt's cap) spreads the retries of many
// clients that failed together — a fleet of gpu-nodes after a core restart,
// jobs after a YouTube outage — the most evenly, so they do not come back in
// step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Full returns the delay before retry number attempt (1 for the first): a
// uniform draw from (0, min(base·2^(attempt-1), limit)].
func Full(attempt int, base, limit time.Duration) time.Duration {
	d := min(base<<min(max(attempt-1, 0), 30), limit)
	if d <= 0 { // shifted past the int64 range
		d = limit
	}
	return rand.N(d) + 1
}

// Sleep waits for d or until ctx ends, whichever comes first.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
