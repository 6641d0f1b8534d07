package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

func keyed(u store.User, key, fingerprint string) store.NewJob {
	return store.NewJob{UserID: u.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg",
		SourceKind: job.SourceHTTP, IdempotencyKey: key, Fingerprint: []byte(fingerprint)}
}

func TestIdempotencyKeyReplaysTheFirstJob(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		ctx := context.Background()
		first, replayed, err := s.CreateJobOnce(ctx, keyed(u, "order-1", "fp-a"))
		require.NoError(t, err)
		require.False(t, replayed)
		again, replayed, err := s.CreateJobOnce(ctx, keyed(u, "order-1", "fp-a"))
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, first.ID, again.ID)

		_, _, err = s.CreateJobOnce(ctx, keyed(u, "order-1", "fp-b"))
		require.ErrorIs(t, err, &job.Error{Code: job.CodeIdempotencyKey}, "same key, other parameters")

		other, replayed, err := s.CreateJobOnce(ctx, keyed(u, "order-2", "fp-a"))
		require.NoError(t, err)
		require.False(t, replayed)
		require.NotEqual(t, first.ID, other.ID)

		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		bobs, replayed, err := s.CreateJobOnce(ctx, keyed(bob, "order-1", "fp-a"))
		require.NoError(t, err)
		require.False(t, replayed, "keys are per user")
		require.NotEqual(t, first.ID, bobs.ID)
	})
}

// TestConcurrentDuplicatesCreateOneJob races 16 identical requests: one
// creates the job, the rest wait on its transaction and replay it.
func TestConcurrentDuplicatesCreateOneJob(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		s, u := newStore(t)
		const n = 16
		ids := make([]string, n)
		replays := make([]bool, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				j, r, err := s.CreateJobOnce(context.Background(), keyed(u, "same-key", "fp"))
				require.NoError(t, err)
				ids[i], replays[i] = j.ID, r
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for i := range n {
			require.Equal(t, ids[0], ids[i])
			if !replays[i] {
				created++
			}
		}
		require.Equal(t, 1, created)
		jobs, _, err := s.ListJobs(context.Background(), u.ID, 100, "")
		require.NoError(t, err)
		require.Len(t, jobs, 1)
	})
}
