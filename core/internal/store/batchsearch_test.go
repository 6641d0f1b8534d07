package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// TestSearchBatchesAcrossUsers: every user's batches, newest first, a page
// at a time after the previous page's last, filtered by user and status;
// and the overview's counts of unfinished batches.
func TestSearchBatchesAcrossUsers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		t.Parallel()
		ctx := context.Background()
		s, alice := newStore(t)
		bob, err := s.EnsureUser(ctx, "bob", store.RoleUser)
		require.NoError(t, err)
		entry := func(u string) []store.BatchEntry {
			return []store.BatchEntry{{URL: u, CanonicalURL: u, SourceKind: job.SourceHTTP}}
		}
		var made []string // oldest first
		for _, n := range []store.NewBatch{
			{UserID: alice.ID, Entries: entry("https://example.com/a.ogg")},
			{UserID: bob.ID, URL: "https://www.youtube.com/playlist?list=PL1", CanonicalURL: "https://www.youtube.com/playlist?list=PL1"},
			{UserID: alice.ID, Entries: entry("https://example.com/b.ogg")},
		} {
			b, _, err := s.CreateBatch(ctx, n)
			require.NoError(t, err)
			made = append(made, b.ID)
		}
		ids := func(bs []store.Batch) []string {
			var out []string
			for _, b := range bs {
				out = append(out, b.ID)
			}
			return out
		}
		page, err := s.SearchBatches(ctx, store.BatchFilter{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{made[2], made[1]}, ids(page))
		require.Equal(t, 1, page[0].Counts.Queued, "with counts")
		rest, err := s.SearchBatches(ctx, store.BatchFilter{Limit: 2, Before: page[1].ID})
		require.NoError(t, err)
		require.Equal(t, []string{made[0]}, ids(rest))

		ofAlice, err := s.SearchBatches(ctx, store.BatchFilter{UserID: alice.ID})
		require.NoError(t, err)
		require.Equal(t, []string{made[2], made[0]}, ids(ofAlice))
		listing, err := s.SearchBatches(ctx, store.BatchFilter{Status: store.BatchEnumerating})
		require.NoError(t, err)
		require.Equal(t, []string{made[1]}, ids(listing))
		_, err = s.SearchBatches(ctx, store.BatchFilter{Status: "bogus"})
		require.Equal(t, job.CodeInvalidArgument, job.CodeOf(err))

		enumerating, running, err := s.UnfinishedBatches(ctx)
		require.NoError(t, err)
		require.Equal(t, [2]int{1, 2}, [2]int{enumerating, running})
		_, err = s.CancelBatch(ctx, "", made[0])
		require.NoError(t, err)
		enumerating, running, err = s.UnfinishedBatches(ctx)
		require.NoError(t, err)
		require.Equal(t, [2]int{1, 1}, [2]int{enumerating, running})
	})
}
