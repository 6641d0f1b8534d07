package breaker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

var (
	errDown    = errors.New("connection refused")
	errPrivate = errors.New("private video")
)

func TestBreakerOpensOnDependencyFailuresOnly(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := New(reg, "youtube", Config{Failures: 3, Cooldown: 50 * time.Millisecond, Counts: func(err error) bool { return err != errPrivate }})
	state := func() string {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		require.Len(t, mfs, 1)
		require.Equal(t, "ytcaption_circuit_breaker_state", mfs[0].GetName())
		m := mfs[0].GetMetric()[0]
		require.Equal(t, "youtube", m.GetLabel()[0].GetValue())
		return map[float64]string{0: "closed", 1: "half-open", 2: "open"}[m.GetGauge().GetValue()]
	}

	// The user's mistakes and cancellations never trip it.
	for range 10 {
		require.ErrorIs(t, b.Do(func() error { return errPrivate }), errPrivate)
		require.ErrorIs(t, b.Do(func() error { return context.Canceled }), context.Canceled)
	}
	require.Equal(t, "closed", state())

	for range 3 {
		require.ErrorIs(t, b.Do(func() error { return errDown }), errDown)
	}
	require.Equal(t, "open", state())
	called := false
	err := b.Do(func() error { called = true; return nil })
	require.ErrorIs(t, err, ErrOpen)
	require.False(t, called, "an open breaker does not call the dependency")
	require.True(t, b.Open())

	// After the cooldown one trial call goes through and closes it.
	require.Eventually(t, func() bool { return state() == "half-open" }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, b.Do(func() error { return nil }))
	require.Equal(t, "closed", state())
}
