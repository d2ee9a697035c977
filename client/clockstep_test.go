package client

import (
	"testing"
	"time"
	"unsafe"
)

// stepped returns a time with the monotonic reading of mono and the wall
// clock of wall, both times with a monotonic reading (time.Now and Add
// keep one): what time.Now returns once the wall clock has moved apart
// from the monotonic one, by a step or by a sleep of the machine, which
// Linux's monotonic clock does not count.
func stepped(t *testing.T, mono, wall time.Time) time.Time {
	t.Helper()
	type repr struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	r := *(*repr)(unsafe.Pointer(&mono))
	r.wall = (*repr)(unsafe.Pointer(&wall)).wall
	s := *(*time.Time)(unsafe.Pointer(&r))
	if !s.Round(0).Equal(wall.Round(0)) || s.Sub(mono) != 0 || s.Round(0).Sub(mono.Round(0)) == 0 {
		t.Fatal("time.Time's layout has changed: cannot make a stepped time")
	}
	return s
}

// TestClockStep: a token is refreshed once either clock says it is due.
// After the machine slept for two hours the wall clock has run on and the
// monotonic clock has not: the one-hour token had expired and was handed
// out as valid for most of another hour. After the wall clock is set back
// an hour, the monotonic clock still ends the token in time.
func TestClockStep(t *testing.T) {
	start := time.Now()
	tests := []struct {
		name           string
		monoAt, wallAt time.Duration // of the clock, after the first token
	}{
		{"machine slept", time.Minute, 2 * time.Hour},
		{"wall clock set back", 2 * time.Hour, -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			clock := func() time.Time { return now }
			base := &countingSource{life: time.Hour, now: clock}
			r := &reuseSource{base: base, now: clock}
			first, err := r.Token()
			if err != nil {
				t.Fatal(err)
			}
			now = stepped(t, start.Add(tt.monoAt), start.Add(tt.wallAt))
			tok, err := r.Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok == first || base.n != 2 {
				t.Fatalf("got the first token (%d token requests), which expired an hour after %v; want a new one", base.n, start)
			}
		})
	}
}
