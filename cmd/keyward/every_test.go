package main

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// A periodic job stuck on a store that does not answer (garbage
// collection, the secrets' last-use flush) is given up after its
// interval, and the next run comes: it held every later run for ever.
func TestEveryBoundsEachRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		runs := make(chan time.Duration, 2)
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			every(ctx, time.Minute, func(ctx context.Context) {
				runs <- time.Since(start)
				<-ctx.Done() // a store that never answers
			})
		}()
		for i, want := range []time.Duration{time.Minute, 2 * time.Minute} {
			if got := <-runs; got != want {
				t.Errorf("run %d began at %v, want %v", i+1, got, want)
			}
		}
		cancel()
		<-done
	})
}
