package soak

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFitFindsALeak checks the verdict's arithmetic on made-up samples: a
// flat process with noise fits near zero, a leaking one fits its rate, and
// what came before the window does not count.
func TestFitFindsALeak(t *testing.T) {
	var samples []sample
	for i := range 360 { // an hour, every 10 s
		at := time.Duration(i) * 10 * time.Second
		noise := float64((i*7919)%11 - 5) // deterministic, ±5
		warm := 0.0
		if at < 20*time.Minute {
			warm = 50 * at.Minutes() // grows while warming up, then flat
		}
		samples = append(samples,
			sample{at: at, proc: "flat", rss: 100<<20 + noise*(1<<20) + warm*(1<<20), goroutines: 40 + noise + warm, fds: 20 + noise/5},
			sample{at: at, proc: "leak", rss: 100<<20 + at.Minutes()*(512<<10), goroutines: 40 + at.Minutes()*3, fds: 20 + at.Minutes()*1.5})
	}
	fits := fitAll(samples, []string{"flat", "leak"}, 20*time.Minute)
	require.Len(t, fits, 2)
	flat, leak := fits[0], fits[1]
	require.Equal(t, 240, flat.n)
	require.InDelta(t, 0, flat.rss*4, float64(maxRSSGrowth)/4) // 40 minutes: 4 tens
	require.InDelta(t, 0, flat.goroutines*4, maxGoroutineGrowth/4)
	require.InDelta(t, 0, flat.fds*4, maxFDGrowth/4)
	require.InDelta(t, 5<<20, leak.rss, 1) // 0.5 MiB a minute
	require.InDelta(t, 30, leak.goroutines, 1e-6)
	require.InDelta(t, 15, leak.fds, 1e-6)
	require.Greater(t, leak.rss*4, float64(maxRSSGrowth))
	require.Greater(t, leak.goroutines*4, float64(maxGoroutineGrowth))
	require.Greater(t, leak.fds*4, float64(maxFDGrowth))

	dir := t.TempDir()
	require.NoError(t, writeCSV(filepath.Join(dir, "samples.csv"), samples))
	b, err := os.ReadFile(filepath.Join(dir, "samples.csv"))
	require.NoError(t, err)
	require.Contains(t, string(b), "seconds,process,rss_bytes,goroutines,open_fds,jobs_in_flight\n0.0,flat,")
	path := filepath.Join(dir, "soak.png")
	require.NoError(t, plot(path, samples, []string{"flat", "leak"}, 20*time.Minute, time.Hour, "test"))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Equal(t, 1200, img.Bounds().Dx())
}

// TestTrendHoldsTheBacklogConstant: goroutines that rise and fall with a
// backlog late in the window (the machine slowed the stack for a while) are
// no leak; goroutines that grow with time under the same backlog are.
func TestTrendHoldsTheBacklogConstant(t *testing.T) {
	var xs, zs, busy, leaking []float64
	for i := range 240 {
		x := float64(i) / 60 // tens of minutes
		z := 5.0
		if i > 200 && i < 230 {
			z = 5 + float64(15-abs(i-215))*4 // a hump of 60 jobs in flight
		}
		xs, zs = append(xs, x), append(zs, z)
		busy = append(busy, 40+3*z+float64(i%3))
		leaking = append(leaking, 40+3*z+25*x)
	}
	require.Greater(t, slope(xs, busy), 10.0, "the plain slope takes the hump for growth")
	require.InDelta(t, 0, trend(xs, zs, busy), 1, "held at a constant backlog, nothing grows")
	require.InDelta(t, 25, trend(xs, zs, leaking), 1e-6)
	require.InDelta(t, slope(xs, leaking), trend(xs, make([]float64, len(xs)), leaking), 1e-9, "no backlog variation: the plain slope")
}

func TestReadRSS(t *testing.T) {
	rss, err := readRSS("/proc/self/status")
	require.NoError(t, err)
	require.Greater(t, rss, float64(1<<20))
	_, err = readRSS("/proc/self/cmdline")
	require.Error(t, err)
}
