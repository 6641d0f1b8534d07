package coreclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ytcaption/ytcaption/edge/internal/coreclient"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "service-token"

// standIn is core's CreateJob and CreateJobs as the wire documents them:
// a job for each creation whose URL starts with http, an invalid_url error
// for the others. Every call waits for hold to be closed (when set).
type standIn struct {
	ytcaptionv1connect.UnimplementedJobServiceHandler
	ytcaptionv1connect.UnimplementedEdgeServiceHandler
	hold     chan struct{}
	inFlight atomic.Int64
	alone    atomic.Int64 // CreateJob calls
	gathered atomic.Int64 // CreateJobs calls
	asked    atomic.Int64 // CreateJobs calls, answered or not
	received atomic.Int64 // creations that reached the stand-in
	down     atomic.Bool  // CreateJobs fails Unavailable
	made     atomic.Int64
}

func (s *standIn) wait() {
	s.inFlight.Add(1)
	if s.hold != nil {
		<-s.hold
	}
}

func (s *standIn) create(user string, msg *ytcaptionv1.CreateJobRequest) (*ytcaptionv1.CreateJobResponse, *connect.Error) {
	if !strings.HasPrefix(msg.GetUrl(), "http") {
		ce := connect.NewError(connect.CodeInvalidArgument, errors.New("only http and https URLs are supported"))
		d, _ := connect.NewErrorDetail(&ytcaptionv1.ErrorDetail{Code: "invalid_url"})
		ce.AddDetail(d)
		return nil, ce
	}
	id := fmt.Sprintf("job-%d", s.made.Add(1))
	// The job carries its user as its model, so the test sees whose it is.
	return &ytcaptionv1.CreateJobResponse{Job: &ytcaptionv1.Job{Id: id, Url: msg.GetUrl(), Model: user}}, nil
}

func (s *standIn) CreateJob(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobRequest]) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
	s.alone.Add(1)
	s.received.Add(1)
	s.wait()
	resp, err := s.create(req.Header().Get(svcauth.UserHeader), req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

func (s *standIn) CreateJobs(ctx context.Context, req *connect.Request[ytcaptionv1.CreateJobsRequest]) (*connect.Response[ytcaptionv1.CreateJobsResponse], error) {
	s.gathered.Add(1)
	s.received.Add(int64(len(req.Msg.GetCreations())))
	s.wait()
	if s.down.Load() {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("core is going away"))
	}
	out := &ytcaptionv1.CreateJobsResponse{}
	for _, c := range req.Msg.GetCreations() {
		resp, err := s.create(c.GetUserId(), c.GetRequest())
		r := &ytcaptionv1.JobCreated{Response: resp}
		if err != nil {
			r = &ytcaptionv1.JobCreated{Error: &ytcaptionv1.CreationError{ConnectCode: uint32(err.Code()), Message: err.Message(), Code: "invalid_url"}}
		}
		out.Results = append(out.Results, r)
	}
	return connect.NewResponse(out), nil
}

// serve runs the stand-in; withEdge false: a core older than CreateJobs.
func serve(t *testing.T, s *standIn, withEdge bool) coreclient.Clients {
	mux := http.NewServeMux()
	mux.Handle(ytcaptionv1connect.NewJobServiceHandler(s))
	if withEdge {
		mux.Handle(ytcaptionv1connect.NewEdgeServiceHandler(s))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == ytcaptionv1connect.EdgeServiceCreateJobsProcedure {
			s.asked.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { // before srv.Close: a test that failed early leaves no call held
		if s.hold != nil {
			select {
			case <-s.hold:
			default:
				close(s.hold)
			}
		}
	})
	c := coreclient.New(srv.URL, token, nil, nil)
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

type result struct {
	user string
	url  string
	resp *connect.Response[ytcaptionv1.CreateJobResponse]
	err  error
}

// sendAll sends n creations at once, each its own user's; every fifth has a
// URL core refuses. wait returns their results once all are answered.
func sendAll(c coreclient.Clients, n int) (wait func() []result) {
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		results[i].user, results[i].url = fmt.Sprintf("user-%d", i), fmt.Sprintf("https://example.com/%d.ogg", i)
		if i%5 == 4 {
			results[i].url = fmt.Sprintf("ftp://example.com/%d.ogg", i)
		}
		wg.Go(func() {
			req := connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: results[i].url})
			req.Header().Set(svcauth.UserHeader, results[i].user)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			results[i].resp, results[i].err = c.Jobs.CreateJob(ctx, req)
		})
	}
	return func() []result {
		wg.Wait()
		return results
	}
}

// createMany is sendAll to a held stand-in: it returns once the creations
// reaching it have stopped coming, the senders all busy and the rest
// queued behind them.
func createMany(t *testing.T, c coreclient.Clients, s *standIn, n int) (wait func() []result) {
	wait = sendAll(c, n)
	require.Eventually(t, func() bool { return s.inFlight.Load() >= 1 }, 10*time.Second, time.Millisecond, "a call reached core")
	for seen := int64(-1); seen != s.received.Load(); time.Sleep(100 * time.Millisecond) {
		seen = s.received.Load()
	}
	return wait
}

// check says each creation got its own answer: its job, for its user, or
// core's refusal with its code and machine-readable code.
func check(t *testing.T, results []result) {
	ids := map[string]bool{}
	for i, r := range results {
		if strings.HasPrefix(r.url, "ftp") {
			var ce *connect.Error
			require.ErrorAs(t, r.err, &ce, "creation %d", i)
			require.Equal(t, connect.CodeInvalidArgument, ce.Code())
			require.Equal(t, "only http and https URLs are supported", ce.Message())
			require.Len(t, ce.Details(), 1)
			v, err := ce.Details()[0].Value()
			require.NoError(t, err)
			require.Equal(t, "invalid_url", v.(*ytcaptionv1.ErrorDetail).GetCode())
			continue
		}
		require.NoError(t, r.err, "creation %d", i)
		j := r.resp.Msg.GetJob()
		require.Equal(t, r.url, j.GetUrl(), "creation %d got its own job", i)
		require.Equal(t, r.user, j.GetModel(), "creation %d was made for its own user", i)
		require.False(t, ids[j.GetId()], "job %s answered twice", j.GetId())
		ids[j.GetId()] = true
	}
}

func TestCreationsArrivingTogetherReachCoreInFewCalls(t *testing.T) {
	s := &standIn{hold: make(chan struct{})}
	c := serve(t, s, true)
	const n = 60
	wait := createMany(t, c, s, n)
	close(s.hold)
	results := wait()
	check(t, results)
	calls := s.alone.Load() + s.gathered.Load()
	t.Logf("%d creations in %d calls (%d CreateJob, %d CreateJobs)", n, calls, s.alone.Load(), s.gathered.Load())
	require.Positive(t, s.gathered.Load(), "creations waiting together go in a CreateJobs")
	// Four senders' first calls, then the other creations gathered, each
	// sender a share of what waits: far fewer calls than creations.
	require.LessOrEqual(t, calls, int64(n/3))
}

// A creation too large to gather goes alone at once, even while every
// gathered call is busy.
func TestALargeCreationGoesAlone(t *testing.T) {
	s := &standIn{hold: make(chan struct{})}
	c := serve(t, s, true)
	const n = 100
	wait := createMany(t, c, s, n)
	require.Less(t, s.received.Load(), int64(n), "creations wait behind the busy senders")
	before := s.alone.Load()
	done := make(chan error, 1)
	go func() {
		req := connect.NewRequest(&ytcaptionv1.CreateJobRequest{Url: "https://example.com/big.ogg", Prompt: strings.Repeat("p", 9<<10)})
		req.Header().Set(svcauth.UserHeader, "user-big")
		_, err := c.Jobs.CreateJob(context.Background(), req)
		done <- err
	}()
	require.Eventually(t, func() bool { return s.alone.Load() == before+1 }, 10*time.Second, time.Millisecond,
		"the large creation reached core on its own while the senders were busy")
	close(s.hold)
	require.NoError(t, <-done)
	check(t, wait())
}

// A core older than CreateJobs answers Unimplemented: the gathered
// creations are sent one by one, and so is every later one.
func TestAnOlderCoreGetsEachCreationAlone(t *testing.T) {
	s := &standIn{hold: make(chan struct{})}
	c := serve(t, s, false)
	wait := createMany(t, c, s, 30)
	close(s.hold)
	check(t, wait())
	asked := s.asked.Load()
	require.Positive(t, asked)
	require.LessOrEqual(t, asked, int64(4), "at most the gathered calls in flight at once found CreateJobs missing")
	before := s.alone.Load()
	check(t, sendAll(c, 10)())
	require.Equal(t, before+10, s.alone.Load())
	require.Equal(t, asked, s.asked.Load(), "later creations go alone at once, without asking again")
}

// A gathered call that fails fails each of its creations with its error, as
// their own calls would have.
func TestAFailedGatheredCallFailsEachOfItsCreations(t *testing.T) {
	s := &standIn{hold: make(chan struct{})}
	s.down.Store(true)
	c := serve(t, s, true)
	wait := createMany(t, c, s, 30)
	close(s.hold)
	results := wait()
	require.Positive(t, s.gathered.Load())
	failed := 0
	for i, r := range results {
		if r.err != nil && strings.HasPrefix(r.url, "http") {
			require.Equal(t, connect.CodeUnavailable, connect.CodeOf(r.err), "creation %d", i)
			failed++
		}
	}
	require.Positive(t, failed, "the gathered creations got the call's error")
}
