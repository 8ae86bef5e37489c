package ledger

import (
	"testing"
	"time"
)

// The main loop sleeps until the core's next deadline: the ticks it slept through all reach the core (a
// propose timeout of a second fires after a second), while a process stopped for longer than it meant to
// sleep gets only a few ticks beyond its sleep.
func TestTicksDue(t *testing.T) {
	tick := 10 * time.Millisecond
	start := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name      string
		slept     time.Duration
		wake      time.Duration
		due       int
		remainder time.Duration // now - new last
	}{
		{"slept as planned", time.Second, time.Second, 100, 0},
		{"a fraction of a tick left over", 1005 * time.Millisecond, time.Second, 100, 5 * time.Millisecond},
		{"woken early by a message", 35 * time.Millisecond, time.Second, 3, 5 * time.Millisecond},
		{"overslept a little", 1050 * time.Millisecond, time.Second, 105, 0},
		{"stopped for ten seconds", 10 * time.Second, time.Second, 110, 0},
		{"stopped while ticking", 10 * time.Second, tick, 11, 0},
	}
	for _, c := range cases {
		due, last := ticksDue(start, start.Add(c.slept), c.wake, tick)
		if due != c.due || start.Add(c.slept).Sub(last) != c.remainder {
			t.Errorf("%s: %d ticks, %v left over; want %d, %v", c.name, due, start.Add(c.slept).Sub(last), c.due, c.remainder)
		}
	}
}
