package backoff

import (
	"testing"
	"time"
)

func TestFullStaysWithinTheCapOfEachAttempt(t *testing.T) {
	for attempt, cap := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 10 * time.Second, 200: 10 * time.Second} {
		var top time.Duration
		for range 2000 {
			d := Full(attempt, time.Second, 10*time.Second)
			if d <= 0 || d > cap {
				t.Fatalf("attempt %d: %s outside (0, %s]", attempt, d, cap)
			}
			top = max(top, d)
		}
		// Full jitter uses the whole range, not only its upper half.
		if top < cap*9/10 {
			t.Errorf("attempt %d: largest of 2000 draws %s, want near %s", attempt, top, cap)
		}
	}
}

func TestFullJitterReachesNearZero(t *testing.T) {
	low := 0
	for range 2000 {
		if Full(3, time.Second, time.Minute) < 400*time.Millisecond {
			low++
		}
	}
	if low == 0 {
		t.Fatal("no draw below 10 % of the cap: that is not full jitter")
	}
}
