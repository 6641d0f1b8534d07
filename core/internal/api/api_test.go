package api

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

func detail(t *testing.T, err error) string {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if ed, ok := v.(*ytcaptionv1.ErrorDetail); ok {
			return ed.GetCode()
		}
	}
	return ""
}

func TestToConnectError(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for _, tc := range []struct {
		err    error
		code   connect.Code
		detail string
	}{
		{job.Errorf(job.CodeInvalidURL, "bad"), connect.CodeInvalidArgument, "invalid_url"},
		{job.Errorf(job.CodeInvalidArgument, "bad"), connect.CodeInvalidArgument, "invalid_argument"},
		{job.ErrNotFound, connect.CodeNotFound, "not_found"},
		{job.Errorf(job.CodeUnauthorized, "no"), connect.CodeUnauthenticated, "unauthorized"},
		{job.Errorf(job.CodeNotReady, "wait"), connect.CodeFailedPrecondition, "transcript_not_ready"},
		{&job.Error{Code: job.CodeLeaseLost, Message: "stale"}, connect.CodeFailedPrecondition, "lease_lost"},
		{context.Canceled, connect.CodeCanceled, ""},
		{errors.New("pq: connection refused"), connect.CodeInternal, "internal"},
	} {
		err := toConnectError(ctx, log, tc.err)
		require.Equal(t, tc.code, connect.CodeOf(err), "%v", tc.err)
		require.Equal(t, tc.detail, detail(t, err), "%v", tc.err)
	}
	err := toConnectError(ctx, log, errors.New("password=hunter2"))
	require.NotContains(t, err.Error(), "hunter2", "internal causes are logged, not returned")
}

func TestLiteralAddressesAreCheckedAtCreation(t *testing.T) {
	t.Parallel()
	strict := &JobService{}
	for _, u := range []string{"http://127.0.0.1/a.ogg", "http://[::1]/a.ogg", "http://169.254.169.254/latest", "http://10.0.0.1/x", "http://localhost:8080/a"} {
		require.Equal(t, job.CodeInvalidURL, job.CodeOf(strict.checkLiteralAddress(u)), u)
	}
	require.NoError(t, strict.checkLiteralAddress("https://media.example.com/a.ogg"), "names are checked when dialled")
	require.NoError(t, strict.checkLiteralAddress("http://93.184.216.34/a.ogg"))
	require.NoError(t, (&JobService{policy: egress.Policy{AllowPrivate: true}}).checkLiteralAddress("http://127.0.0.1/a.ogg"))
}
