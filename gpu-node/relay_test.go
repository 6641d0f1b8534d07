package agent

import (
	"testing"

	"github.com/stretchr/testify/require"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

func TestRelayHandsAPollOnlyToAPendingReport(t *testing.T) {
	var r relay
	req := &ytcaptionv1.AcquireJobRequest{NodeId: "n1", Prefetch: true}
	require.Nil(t, r.offer(req), "no report under way: the acquirer polls itself")

	r.expect()
	got := r.offer(req)
	require.NotNil(t, got)
	p := r.take()
	require.Same(t, req, p.req, "the report carries the offered poll")
	p.answer(&ytcaptionv1.Assignment{JobId: "job-2"})
	p.answer(nil) // the report's deferred answer comes second and is dropped
	require.Equal(t, "job-2", (<-got).GetJobId())
	require.Nil(t, r.offer(req), "the report's call went out: nothing pending")
}

func TestRelayReportWithoutAnOfferLeavesNothingBehind(t *testing.T) {
	var r relay
	r.expect()
	require.Nil(t, r.take(), "no poll offered: the completion goes alone")
	require.Nil(t, r.offer(&ytcaptionv1.AcquireJobRequest{}), "a later poll is not left waiting for a report that has gone")
	var none *nextPoll
	none.answer(nil) // a report with no poll answers nobody
}

func TestRelayTwoReportsOneOffer(t *testing.T) {
	var r relay
	r.expect()
	r.expect()
	got := r.offer(&ytcaptionv1.AcquireJobRequest{})
	p := r.take()
	require.NotNil(t, p, "the first report to go carries the poll")
	require.Nil(t, r.take(), "the second finds none")
	p.answer(nil)
	require.Nil(t, <-got, "an ending that is no completion answers nil: the acquirer polls itself")
	require.Nil(t, r.offer(&ytcaptionv1.AcquireJobRequest{}))
}
