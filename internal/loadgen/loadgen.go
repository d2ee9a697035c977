// Package loadgen drives a request function at a fixed concurrency for a
// bounded time and summarizes what happened: throughput, latency
// percentiles and failures by kind.
package loadgen

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Request performs one request and returns a status for the tally (an
// HTTP status, or 0 for a transport error) and whether it succeeded.
type Request func(ctx context.Context, worker, i int) (status int, ok bool)

// Result summarizes a run.
type Result struct {
	Requests  int           `json:"requests"`
	Errors    int           `json:"errors"`
	ByStatus  map[int]int   `json:"errors_by_status,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	PerSecond float64       `json:"requests_per_second"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
}

// Run calls req from concurrency workers until duration has passed (or ctx
// ends), and reports. progress, if set, is called about every 250 ms with
// the number of requests so far.
func Run(ctx context.Context, concurrency int, duration time.Duration, req Request, progress func(done int64, elapsed time.Duration)) Result {
	deadline := time.Now().Add(duration)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var (
		wg    sync.WaitGroup
		done  atomic.Int64
		mu    sync.Mutex
		lat   []time.Duration
		stats = map[int]int{}
		errs  int
	)
	start := time.Now()
	stop, stopped := make(chan struct{}), make(chan struct{})
	if progress == nil {
		close(stopped)
	} else {
		go func() {
			defer close(stopped)
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(done.Load(), time.Since(start))
				}
			}
		}()
	}
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			localStats := map[int]int{}
			localErrs := 0
			// The clock, not only ctx, says when the run is over: on a busy
			// machine ctx's timer can fire late, after connections have
			// already timed out on its deadline.
			for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
				t0 := time.Now()
				status, ok := req(ctx, w, i)
				end := time.Now()
				d := end.Sub(t0)
				if !ok && (ctx.Err() != nil || !end.Before(deadline)) {
					break // cut off by the deadline: not a failure of the server
				}
				local = append(local, d)
				if !ok {
					localErrs++
					localStats[status]++
				}
				done.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += localErrs
			for k, v := range localStats {
				stats[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	<-stopped // no progress report after Run returns
	elapsed := time.Since(start)
	r := Result{Requests: len(lat), Errors: errs, Elapsed: elapsed}
	if len(stats) > 0 {
		r.ByStatus = stats
	}
	if elapsed > 0 {
		r.PerSecond = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
		r.P50, r.P90, r.P99, r.Max = at(0.50), at(0.90), at(0.99), lat[len(lat)-1]
	}
	return r
}
