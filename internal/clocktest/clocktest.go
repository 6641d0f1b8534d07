// Package clocktest is the stub clock tests hand to code that takes a
// func() time.Time: it stands still until the test moves it, so what the code
// measures with it is known exactly, with no sleeps.
package clocktest

import (
	"sync"
	"time"
)

// Clock is safe for use by the goroutines of the code under test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock standing at a fixed instant.
func New() *Clock {
	return &Clock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now is the clock's time; pass the method value (c.Now) as the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
