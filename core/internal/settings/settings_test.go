package settings_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/settings"
	"github.com/ytcaption/ytcaption/internal/consultest"
)

func TestSettingsFollowConsulKVThroughTheDocumentedWireFormat(t *testing.T) {
	consul := consultest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base := settings.Settings{CreateRate: 10, CreateBurst: 20, ReadRate: 100, ReadBurst: 200, MaxAttempts: 3}
	src, err := settings.Watch(ctx, slog.New(slog.DiscardHandler), consul.Addr(), base)
	require.NoError(t, err)
	require.Equal(t, base, src.Get(), "no keys: the flags")

	eventually := func(want settings.Settings, why string) {
		t.Helper()
		require.Eventually(t, func() bool { return src.Get() == want }, 5*time.Second, 10*time.Millisecond, why)
	}
	consul.PutKV(5, "ytcaption/core/intake", "paused")
	paused := base
	paused.IntakePaused = true
	eventually(paused, "a blocking query wakes on the change")

	consul.PutKV(6, "ytcaption/core/create_rate", "50")
	consul.PutKV(7, "ytcaption/core/max_attempts", "-2") // refused: the flag stays
	consul.PutKV(8, "ytcaption/core/read_burst", "lots") // refused too
	faster := paused
	faster.CreateRate = 50
	eventually(faster, "valid keys apply, invalid ones leave the flags")

	consul.PutKV(9, "ytcaption/core/intake", "")
	open := faster
	open.IntakePaused = false
	eventually(open, "a deleted key gives the flag back")

	// A snapshot restore: the index goes backwards; the watcher starts over.
	consul.PutKV(2, "ytcaption/core/create_rate", "70")
	restored := open
	restored.CreateRate = 70
	eventually(restored, "an index that went backwards is a fresh start, not an old answer")
}
