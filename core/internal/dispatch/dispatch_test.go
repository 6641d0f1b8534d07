package dispatch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSignalWakesWaitersTakenBeforeNotify(t *testing.T) {
	t.Parallel()
	s := NewSignal()
	a, b := s.Wait(), s.Wait()
	require.False(t, closed(a))
	s.Notify()
	require.True(t, closed(a))
	require.True(t, closed(b))
	require.False(t, closed(s.Wait()), "a wait after the notify needs the next one")
}

func TestKeyedWakesOnlyItsKeyAndForgetsReleasedKeys(t *testing.T) {
	t.Parallel()
	k := NewKeyed()
	a, releaseA := k.Wait("a")
	b, releaseB := k.Wait("b")
	k.Notify("a")
	require.True(t, closed(a))
	require.False(t, closed(b))
	releaseA()
	releaseA() // idempotent
	releaseB()
	require.Zero(t, k.Len())
	k.Notify("nobody") // no waiters: no entry created
	require.Zero(t, k.Len())
}

func TestKeyedReleaseAfterNotifyKeepsNewWaiter(t *testing.T) {
	t.Parallel()
	k := NewKeyed()
	_, oldRelease := k.Wait("a")
	k.Notify("a")
	fresh, freshRelease := k.Wait("a")
	oldRelease() // must not drop the fresh waiter's entry
	k.Notify("a")
	require.True(t, closed(fresh))
	freshRelease()
	require.Zero(t, k.Len())
}
