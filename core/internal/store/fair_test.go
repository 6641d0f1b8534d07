package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
)

// stage is one of the two claiming stages, with what ends a claim in it.
type stage struct {
	name   string
	claim  func(*store.Store) (job.Job, bool, error)
	finish func(*store.Store, job.Job) error
}

var stages = []stage{
	{
		name: "download",
		claim: func(s *store.Store) (job.Job, bool, error) {
			return s.ClaimQueued(context.Background(), "core-1", lease)
		},
		finish: func(s *store.Store, j job.Job) error { return markReady(s, j) },
	},
	{
		name: "transcribe",
		claim: func(s *store.Store) (job.Job, bool, error) {
			return s.ClaimReady(context.Background(), "node-1", sphinx, lease, 0)
		},
		finish: func(s *store.Store, j job.Job) error {
			_, err := s.Complete(context.Background(), j.ID, j.Epoch, "en", 0)
			return err
		},
	},
}

func markReady(s *store.Store, j job.Job) error {
	return s.MarkReady(context.Background(), j.ID, j.Epoch, store.Media{Title: "a", AudioKey: "audio/" + j.ID + ".wav"})
}

// queueFor makes n jobs of u waiting in st's stage: queued for the download
// stage, ready (downloaded in creation order, all of them before the next
// call's) for the transcription stage.
func queueFor(t *testing.T, s *store.Store, u store.User, st stage, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = create(t, s, u).ID
	}
	if st.name == "transcribe" {
		for range ids {
			j, ok, err := s.ClaimQueued(context.Background(), "core-1", lease)
			require.NoError(t, err)
			require.True(t, ok)
			require.NoError(t, markReady(s, j))
		}
	}
	return ids
}

// TestClaimIsFairByUser: a user's batch queued first does not make another
// user's jobs wait behind all of it — they are handed out within the first
// few claims, in both stages. A first-in-first-out claim hands them out 51st
// and 52nd.
func TestClaimIsFairByUser(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		for _, st := range stages {
			t.Run(st.name, func(t *testing.T) {
				t.Parallel()
				s, alice := newStore(t)
				bob, err := s.EnsureUser(context.Background(), "bob", store.RoleUser)
				require.NoError(t, err)
				batch := queueFor(t, s, alice, st, 50)
				singles := queueFor(t, s, bob, st, 2)

				var order []string // whose each claim was: "a" or "b"
				for {
					j, ok, err := st.claim(s)
					require.NoError(t, err)
					if !ok {
						break
					}
					switch {
					case j.UserID == bob.ID:
						order = append(order, "b")
					case j.UserID == alice.ID:
						order = append(order, "a")
					}
					require.NoError(t, st.finish(s, j))
				}
				require.Len(t, order, len(batch)+len(singles), "every job claimed once")
				// One serial claimer holds nothing between claims, so the
				// users take turns: alice's older job, bob's, alice's, bob's.
				require.Equal(t, []int{1, 3}, positions(order, "b"), "claim order %v", order)
			})
		}
	})
}

// TestClaimPrefersTheUserHoldingFewest: a user holding jobs in the stage
// waits for one holding fewer, even one served more recently — a user with
// several workers busy does not get the next free one while another has none.
func TestClaimPrefersTheUserHoldingFewest(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		for _, st := range stages {
			t.Run(st.name, func(t *testing.T) {
				t.Parallel()
				s, alice := newStore(t)
				bob, err := s.EnsureUser(context.Background(), "bob", store.RoleUser)
				require.NoError(t, err)
				queueFor(t, s, alice, st, 10)
				for range 3 { // alice's three, held: three workers busy with her batch
					j, ok, err := st.claim(s)
					require.NoError(t, err)
					require.True(t, ok)
					require.Equal(t, alice.ID, j.UserID)
				}
				queueFor(t, s, bob, st, 2)
				for i := range 2 {
					j, ok, err := st.claim(s)
					require.NoError(t, err)
					require.True(t, ok)
					// The second time bob was served last, yet holds 0 to alice's 3.
					require.Equal(t, bob.ID, j.UserID, "claim %d after bob queued", i+1)
					require.NoError(t, st.finish(s, j))
				}
				j, ok, err := st.claim(s)
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, alice.ID, j.UserID, "bob has nothing left")
			})
		}
	})
}

// TestFairClaimUnderConcurrentClaimers: claimers racing over several users'
// queues each take a different job — no job twice, none lost — as
// FOR UPDATE SKIP LOCKED on each user's next job promises on PostgreSQL
// (SQLite has one writer).
func TestFairClaimUnderConcurrentClaimers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		for _, st := range stages {
			t.Run(st.name, func(t *testing.T) {
				t.Parallel()
				s, alice := newStore(t)
				var want []string
				for i, n := range []int{40, 5, 1} {
					u := alice
					if i > 0 {
						var err error
						u, err = s.EnsureUser(context.Background(), fmt.Sprintf("user-%d", i), store.RoleUser)
						require.NoError(t, err)
					}
					want = append(want, queueFor(t, s, u, st, n)...)
				}
				var (
					mu  sync.Mutex
					got []string
					wg  sync.WaitGroup
				)
				for range 8 {
					wg.Go(func() {
						for {
							j, ok, err := st.claim(s)
							if err != nil {
								t.Error(err)
								return
							}
							if !ok {
								return
							}
							mu.Lock()
							got = append(got, j.ID)
							mu.Unlock()
							if err := st.finish(s, j); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				// A claimer may come back empty while another's statement
				// has a user's next job locked and takes another user's: a
				// serial pass picks up whatever such a race left.
				for {
					j, ok, err := st.claim(s)
					require.NoError(t, err)
					if !ok {
						break
					}
					got = append(got, j.ID)
				}
				slices.Sort(got)
				slices.Sort(want)
				require.Equal(t, want, got, "each job claimed exactly once")
			})
		}
	})
}

// TestFairClaimLocksOnlyWhatItTakes: claimers that start together, as
// workers woken by one announcement do, over users with one job each, all
// get a job: a claim locks only the job it takes, so none finds the others
// locked by a claim that will not take them and comes back empty.
func TestFairClaimLocksOnlyWhatItTakes(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newStore storeMaker) {
		for _, st := range stages {
			t.Run(st.name, func(t *testing.T) {
				t.Parallel()
				s, _ := newStore(t)
				const claimers = 4
				var users []store.User
				for i := range claimers {
					u, err := s.EnsureUser(context.Background(), fmt.Sprintf("user-%d", i), store.RoleUser)
					require.NoError(t, err)
					users = append(users, u)
				}
				for round := range 15 {
					for _, u := range users {
						queueFor(t, s, u, st, 1)
					}
					start := make(chan struct{})
					var wg sync.WaitGroup
					var mu sync.Mutex
					empty := 0
					for range claimers {
						wg.Go(func() {
							<-start
							j, ok, err := st.claim(s)
							if err != nil {
								t.Error(err)
								return
							}
							if !ok {
								mu.Lock()
								empty++
								mu.Unlock()
								return
							}
							if err := st.finish(s, j); err != nil {
								t.Error(err)
							}
						})
					}
					close(start)
					wg.Wait()
					require.Zero(t, empty, "round %d: claimers that came back empty with a job for each", round)
				}
			})
		}
	})
}

func positions(order []string, who string) []int {
	var at []int
	for i, w := range order {
		if w == who {
			at = append(at, i)
		}
	}
	return at
}
