package main

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keyward/keyward/internal/testkeyward"
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

// heldUsage flushes last-use times as clientauth's FlushUsage does (a
// failed write keeps them for the next flush); its first write does not
// answer until its context ends, then fails.
type heldUsage struct {
	mu               sync.Mutex
	pending, written map[string]time.Time
	writes           int
}

func (u *heldUsage) flush(ctx context.Context) error {
	u.mu.Lock()
	m := u.pending
	u.pending = map[string]time.Time{}
	u.writes++
	first := u.writes == 1
	u.mu.Unlock()
	if first {
		<-ctx.Done()
		u.mu.Lock()
		maps.Copy(u.pending, m)
		u.mu.Unlock()
		return ctx.Err()
	}
	u.mu.Lock()
	maps.Copy(u.written, m)
	u.mu.Unlock()
	return nil
}

// A periodic last-use flush still running at shutdown, that then fails,
// puts its times back before the flush at shutdown takes them: they were
// put back after it, where nothing flushed them any more, and lost
// silently.
func TestShutdownWaitsForPeriodicUsageFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testkeyward.SyncBuffer
		used := time.Now()
		u := &heldUsage{pending: map[string]time.Time{"sec-1": used}, written: map[string]time.Time{}}
		m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), flushUsage: u.flush}
		bg, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := startJobs(bg, job{30 * time.Second, m.flushSecretUsage})
		time.Sleep(30 * time.Second)
		synctest.Wait() // the periodic flush is in progress, held

		sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer scancel()
		start := time.Now()
		m.stopJobsAndFlush(sctx, stop, nil)
		if d := time.Since(start); d != 0 {
			t.Errorf("shutdown waited %v for the canceled flush, want 0", d)
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if got, ok := u.written["sec-1"]; !ok || !got.Equal(used) {
			t.Errorf("written = %v, want sec-1's last use %v written by the flush at shutdown", u.written, used)
		}
		if got := logs.String(); strings.Contains(got, "failed") || strings.Contains(got, "did not end in time") {
			t.Errorf("log = %q, want no failure: the flush stopped by shutdown left its times to the flush at shutdown", got)
		}
	})
}

// A job that ignores its cancellation holds shutdown only until the
// shutdown's deadline, which then says so.
func TestShutdownBoundedByStuckJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testkeyward.SyncBuffer
		release := make(chan struct{})
		m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), flushUsage: func(ctx context.Context) error { return ctx.Err() }}
		bg, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := startJobs(bg, job{time.Minute, func(context.Context) { <-release }})
		time.Sleep(time.Minute)
		synctest.Wait()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer scancel()
		start := time.Now()
		m.stopJobsAndFlush(sctx, stop, nil)
		// The jobs get all but the last flush's time, which it does not use.
		if d := time.Since(start); d != shutdownGrace-lastFlushTime {
			t.Errorf("shutdown took %v, want the grace period %v less the last flush's %v", d, shutdownGrace, lastFlushTime)
		}
		if got := logs.String(); !strings.Contains(got, "did not end in time at shutdown") {
			t.Errorf("log = %q, want the jobs said not to have ended", got)
		}
		close(release)
	})
}

// Jobs that have ended are not said to be late when the wait for them
// has ended too: select picked either, and stop reported jobs that had
// returned as not ended in time, half the time.
func TestStopJobsEndedWithWaitOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		over, cancelWait := context.WithCancel(context.Background())
		cancelWait()
		for i := range 50 {
			bg, cancel := context.WithCancel(context.Background())
			stop := startJobs(bg, job{time.Minute, func(context.Context) {}})
			cancel()
			synctest.Wait() // the jobs have returned
			if !stop(over) {
				t.Fatalf("stop %d = false for jobs that had returned", i)
			}
		}
	})
}

// A job that ignores its cancellation leaves the flush at shutdown
// lastFlushTime of the shutdown's bound: it took all of it, and the flush
// ran on a context already ended, losing the last uses since the flush
// before.
func TestStuckJobLeavesLastFlushItsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testkeyward.SyncBuffer
		release := make(chan struct{})
		var (
			flushErr error
			left     time.Duration
		)
		m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), flushUsage: func(ctx context.Context) error {
			d, _ := ctx.Deadline()
			flushErr, left = ctx.Err(), time.Until(d)
			return flushErr
		}}
		bg, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := startJobs(bg, job{time.Minute, func(context.Context) { <-release }})
		time.Sleep(time.Minute)
		synctest.Wait()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownCutoff)
		defer scancel()
		m.stopJobsAndFlush(sctx, stop, nil)
		if flushErr != nil || left != lastFlushTime {
			t.Errorf("the flush at shutdown ran with %v left (%v), want %v", left, flushErr, lastFlushTime)
		}
		if got := logs.String(); strings.Contains(got, "failed at shutdown") {
			t.Errorf("log = %q, want the last flush done", got)
		}
		close(release)
	})
}

// Jobs canceled once requests cut off took the stops' share of the
// shutdown (lastFlushTime left) get stopFloor to return: canceled with no
// time left, jobs that returned a moment later were said not to have
// ended in time.
func TestStopJobsGivenFloorAfterCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testkeyward.SyncBuffer
		var flushErr error
		m := &Main{Logger: slog.New(slog.NewTextHandler(&logs, nil)), flushUsage: func(ctx context.Context) error {
			flushErr = ctx.Err()
			return flushErr
		}}
		bg, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := startJobs(bg, job{time.Minute, func(ctx context.Context) { <-ctx.Done() }})
		time.Sleep(time.Minute)
		synctest.Wait() // the job is running, until canceled
		sctx, scancel := context.WithTimeout(context.Background(), lastFlushTime)
		defer scancel()
		m.stopJobsAndFlush(sctx, stop, nil)
		if got := logs.String(); strings.Contains(got, "did not end in time") {
			t.Errorf("log = %q, want the job that returned once canceled not said late", got)
		}
		if flushErr != nil {
			t.Errorf("the flush at shutdown ran on an ended context: %v", flushErr)
		}
	})
}
