package jobcache

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

func job(id string, st ytcaptionv1.JobStatus) *ytcaptionv1.Job {
	return &ytcaptionv1.Job{Id: id, Status: st}
}

func TestCacheKeepsOnlyFinishedJobsForTheirOwnerUntilTheTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(5 * time.Second)
	c.now = func() time.Time { return now }

	c.Put("u1", job("done", ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED))
	c.Put("u1", job("failed", ytcaptionv1.JobStatus_JOB_STATUS_FAILED))
	c.Put("u1", job("cancelled", ytcaptionv1.JobStatus_JOB_STATUS_CANCELLED))
	for _, st := range []ytcaptionv1.JobStatus{ytcaptionv1.JobStatus_JOB_STATUS_QUEUED, ytcaptionv1.JobStatus_JOB_STATUS_DOWNLOADING,
		ytcaptionv1.JobStatus_JOB_STATUS_READY, ytcaptionv1.JobStatus_JOB_STATUS_TRANSCRIBING} {
		c.Put("u1", job(st.String(), st))
		if c.Get("u1", st.String()) != nil {
			t.Errorf("a %s job was cached: its progress must always come from core", st)
		}
	}
	for _, id := range []string{"done", "failed", "cancelled"} {
		if j := c.Get("u1", id); j.GetId() != id {
			t.Errorf("Get(u1, %s) = %v, want the cached job", id, j)
		}
	}
	if c.Get("u2", "done") != nil {
		t.Error("another user's job was served from the cache")
	}
	now = now.Add(5 * time.Second)
	if c.Get("u1", "done") != nil {
		t.Error("a job was served after its TTL")
	}
}

func TestCacheWithoutTTLKeepsNothing(t *testing.T) {
	c := New(-1)
	c.Put("u1", job("done", ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED))
	if c.Get("u1", "done") != nil {
		t.Error("a disabled cache served a job")
	}
}

func TestReadAsksCoreOnlyUntilTheJobIsFinishedAndCached(t *testing.T) {
	c := New(time.Minute)
	calls := 0
	st := ytcaptionv1.JobStatus_JOB_STATUS_TRANSCRIBING
	fetch := func() (*ytcaptionv1.Job, error) { calls++; return job("j", st), nil }
	for range 2 {
		if _, err := c.Read("u1", "j", fetch); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Fatalf("a running job was read from core %d times in 2 reads, want 2", calls)
	}
	st = ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED
	for range 2 {
		if j, err := c.Read("u1", "j", fetch); err != nil || j.GetStatus() != st {
			t.Fatalf("Read = %v, %v", j, err)
		}
	}
	if calls != 3 {
		t.Fatalf("core was asked %d times, want 3: a finished job is answered from the cache", calls)
	}
	_, err := c.Read("u2", "j", func() (*ytcaptionv1.Job, error) { return nil, errNotYours })
	if err != errNotYours {
		t.Fatalf("another user's read = %v, want core's answer", err)
	}
}

var errNotYours = errors.New("not found")

// TestCacheDropsExpiredJobs: a steady stream of finished jobs, each read
// once, keeps the map near what the TTL holds, not the 100,000 entries of
// its hard bound (the soak found the edge's memory growing 1.7 KB a job).
func TestCacheDropsExpiredJobs(t *testing.T) {
	c := New(5 * time.Second)
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }
	for i := range 20_000 { // 4 jobs a second for 5,000 s
		c.Put("u", &ytcaptionv1.Job{Id: fmt.Sprint(i), Status: ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED})
		now = now.Add(250 * time.Millisecond)
	}
	c.mu.Lock()
	n := len(c.m)
	c.mu.Unlock()
	require.LessOrEqual(t, n, 2*minSweep, "expired jobs are dropped")
	require.NotNil(t, c.Get("u", "19999"), "the latest stays until its TTL")
}

// TestRunningJobsAreKeptOnlyWhileTheFeedIsFollowed: a running job is kept
// once the feed is live, for its owner only; a change the feed names drops
// it, and so does losing the feed.
func TestRunningJobsAreKeptOnlyWhileTheFeedIsFollowed(t *testing.T) {
	c := New(time.Hour)
	calls := 0
	fetch := func() (*ytcaptionv1.Job, error) {
		calls++
		return job("j", ytcaptionv1.JobStatus_JOB_STATUS_DOWNLOADING), nil
	}
	read := func() {
		t.Helper()
		_, err := c.Read("u1", "j", fetch)
		require.NoError(t, err)
	}
	read()
	read()
	require.Equal(t, 2, calls, "without the feed a running job is always read from core")

	c.setLive(true)
	read()
	read()
	require.Equal(t, 3, calls, "with the feed, kept until it changes")
	require.Nil(t, c.Get("u2", "j"), "another user's job is never served")

	c.Forget("j")
	read()
	require.Equal(t, 4, calls, "the feed named it: read again")

	c.setLive(false)
	read()
	require.Equal(t, 5, calls, "the feed lost: running jobs come from core again")
}

// TestAReadInFlightWhenItsJobChangesIsNotKept: core answered with the state
// before the change, and the feed's news of the change came before the
// answer was kept; keeping it would serve the old state until the TTL.
func TestAReadInFlightWhenItsJobChangesIsNotKept(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(time.Hour)
	c.now = func() time.Time { return now }
	c.setLive(true)
	old := job("j", ytcaptionv1.JobStatus_JOB_STATUS_DOWNLOADING)
	_, err := c.Read("u1", "j", func() (*ytcaptionv1.Job, error) { c.Forget("j"); return old, nil })
	require.NoError(t, err)
	require.Nil(t, c.Get("u1", "j"), "changed while in flight")

	now = now.Add(3 * changedTick)
	_, err = c.Read("u1", "j", func() (*ytcaptionv1.Job, error) { c.ForgetAll(); return old, nil })
	require.NoError(t, err)
	require.Nil(t, c.Get("u1", "j"), "everything forgotten while in flight")

	_, err = c.Read("u1", "j", func() (*ytcaptionv1.Job, error) { now = now.Add(3 * changedTick); return old, nil })
	require.NoError(t, err)
	require.Nil(t, c.Get("u1", "j"), "a read longer than the changes are remembered")

	_, err = c.Read("u1", "j", func() (*ytcaptionv1.Job, error) { c.Forget("other"); return old, nil })
	require.NoError(t, err)
	require.NotNil(t, c.Get("u1", "j"), "another job's change does not matter")
}

// TestReadEncodedEncodesACachedJobOnce: reads of a cached job share one
// encoding; a job that changed (Forget) is encoded afresh, and a job the
// cache does not keep is encoded on every read.
func TestReadEncodedEncodesACachedJobOnce(t *testing.T) {
	c := New(time.Minute)
	var encodes int
	encode := func(j *ytcaptionv1.Job) ([]byte, error) {
		encodes++
		return []byte(j.GetId() + ":" + j.GetStatus().String()), nil
	}
	status := ytcaptionv1.JobStatus_JOB_STATUS_SUCCEEDED
	fetch := func() (*ytcaptionv1.Job, error) { return job("j", status), nil }
	for range 3 {
		b, err := c.ReadEncoded("u", "j", fetch, encode)
		require.NoError(t, err)
		require.Equal(t, "j:JOB_STATUS_SUCCEEDED", string(b))
	}
	require.Equal(t, 2, encodes, "the read that fetched it, then one for every read of the cached job")

	c.Forget("j")
	status = ytcaptionv1.JobStatus_JOB_STATUS_FAILED
	b, err := c.ReadEncoded("u", "j", fetch, encode)
	require.NoError(t, err)
	require.Equal(t, "j:JOB_STATUS_FAILED", string(b), "a changed job is encoded afresh")

	status = ytcaptionv1.JobStatus_JOB_STATUS_TRANSCRIBING
	encodes = 0
	for range 2 {
		_, err := c.ReadEncoded("u", "running", fetch, encode)
		require.NoError(t, err)
	}
	require.Equal(t, 2, encodes, "a running job, not kept without the feed, is encoded on every read")

	_, err = c.ReadEncoded("u", "missing", func() (*ytcaptionv1.Job, error) { return nil, errors.New("core says no") }, encode)
	require.Error(t, err)
}
