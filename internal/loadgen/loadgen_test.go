package loadgen

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestRun(t *testing.T) {
	var progressed bool
	r := Run(context.Background(), Load{Concurrency: 4, Duration: 300 * time.Millisecond}, func(ctx context.Context, w, i int) (int, bool) {
		time.Sleep(time.Millisecond)
		if i%10 == 9 {
			return 503, false
		}
		return 200, true
	}, func(done int64, _ time.Duration) { progressed = progressed || done > 0 })
	if r.Requests < 50 || r.PerSecond <= 0 {
		t.Fatalf("result = %+v", r)
	}
	if r.Errors == 0 || r.ByStatus[503] != r.Errors {
		t.Fatalf("errors = %d by status %v", r.Errors, r.ByStatus)
	}
	if !(r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) || r.P50 < time.Millisecond {
		t.Fatalf("percentiles out of order: %+v", r)
	}
	if !progressed {
		t.Fatal("no progress reported")
	}
}

// The last progress report comes when every request is done, before the
// latencies are sorted, so that a caller reading its own CPU time there
// leaves out Run's summary.
func TestRunLastProgress(t *testing.T) {
	var last int64
	r := Run(context.Background(), Load{Concurrency: 2, Duration: 300 * time.Millisecond}, func(ctx context.Context, w, i int) (int, bool) {
		time.Sleep(time.Millisecond)
		return 200, true
	}, func(done int64, _ time.Duration) { last = done })
	if last != int64(r.Requests) {
		t.Errorf("the last progress report counted %d requests of %d", last, r.Requests)
	}
}

// A Request with nothing left to send stops its worker: the run ends
// when every worker has, its figures cover the requests sent, and the
// calls that sent nothing are neither requests nor errors.
func TestRunExhausted(t *testing.T) {
	for _, rate := range []float64{0, 2000} {
		var left atomic.Int64
		left.Store(100)
		r := Run(context.Background(), Load{Concurrency: 4, Duration: 5 * time.Second, Rate: rate}, func(ctx context.Context, w, i int) (int, bool) {
			if left.Add(-1) < 0 {
				return Exhausted, false
			}
			time.Sleep(time.Millisecond)
			return 200, true
		}, nil)
		if !r.Exhausted || r.Requests != 100 || r.Errors != 0 || r.P50 < time.Millisecond {
			t.Fatalf("rate %v: %+v, want 100 requests, no errors, Exhausted", rate, r)
		}
		if r.Elapsed > 2*time.Second {
			t.Errorf("rate %v: the run took %v, want it over once the requests ran out", rate, r.Elapsed)
		}
	}
}

// Load.Prepare's work, done before each request, is not in the request's
// latency: in a closed loop, nor with a rate the worker keeps up with. It
// is called with the worker and i of the request it comes before, and its
// Exhausted stops its worker as a Request's does. The run is in a
// synctest bubble, whose clock moves only while every goroutine waits:
// the latencies are exactly those of the waits counted, not whatever a
// busy machine adds.
func TestRunPrepare(t *testing.T) {
	for _, rate := range []float64{0, 20} {
		t.Run(fmt.Sprintf("rate %v", rate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var prepared [2]atomic.Int64 // per worker: the i prepared for, plus one
				var left atomic.Int64
				left.Store(20)
				load := Load{Concurrency: 2, Duration: 2 * time.Second, Rate: rate, Prepare: func(ctx context.Context, w, i int) int {
					if left.Add(-1) < 0 {
						return Exhausted
					}
					time.Sleep(20 * time.Millisecond) // signing, say
					prepared[w].Store(int64(i) + 1)
					return 0
				}}
				var mismatched atomic.Int64
				r := Run(context.Background(), load, func(ctx context.Context, w, i int) (int, bool) {
					if prepared[w].Load() != int64(i)+1 {
						mismatched.Add(1)
					}
					return 200, true
				}, nil)
				if !r.Exhausted || r.Requests != 20 || mismatched.Load() != 0 {
					t.Errorf("rate %v: %+v, %d requests not prepared for; want 20 requests, each prepared, and Exhausted", rate, r, mismatched.Load())
				}
				// With a rate, worker 0's first request falls due at once, and
				// its Prepare makes it late.
				if slowest := map[bool]time.Duration{false: r.Max, true: r.P90}[rate > 0]; slowest >= 20*time.Millisecond {
					t.Errorf("rate %v: latencies up to %v: the 20ms of Prepare were counted", rate, slowest)
				}
			})
		})
	}
}

// With a rate, Prepare runs once the worker's wait for the request is
// over, not before it: what it signs (a credential checked for its age)
// must not age while the worker waits for the request to fall due. One
// worker, a request a second: each is sent the moment it was prepared,
// and prepared no earlier than it was due. The bubble's clock moves only
// while every goroutine waits, so "the same moment" is exact.
func TestRunPrepareAfterWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		preparedAt := map[int]time.Time{} // one worker: one goroutine
		load := Load{Concurrency: 1, Duration: 5 * time.Second, Rate: 1, Prepare: func(ctx context.Context, w, i int) int {
			preparedAt[i] = time.Now()
			return 0
		}}
		r := Run(context.Background(), load, func(ctx context.Context, w, i int) (int, bool) {
			if due := start.Add(time.Duration(i) * time.Second); preparedAt[i].Before(due) {
				t.Errorf("request %d, due at +%v, was prepared at +%v, before it fell due", i, due.Sub(start), preparedAt[i].Sub(start))
			}
			if aged := time.Since(preparedAt[i]); aged != 0 {
				t.Errorf("request %d was sent %v after it was prepared", i, aged)
			}
			return 200, true
		}, nil)
		if r.Requests != 5 || r.Errors != 0 {
			t.Errorf("%+v, want 5 requests, no errors", r)
		}
	})
}

func TestRunRate(t *testing.T) {
	const (
		rate        = 400.0
		concurrency = 4
		duration    = 500 * time.Millisecond
	)
	tests := []struct {
		name    string
		work    time.Duration // each request's own time
		minMax  time.Duration // the least the slowest latency can be
		minDone int
	}{
		// Answers faster than the schedule: the rate is kept, never
		// exceeded, whatever the machine's speed.
		{"keeps up", 0, 0, int(rate * duration.Seconds() / 4)},
		// Answers slower than a worker's interval (10 ms): the workers fall
		// behind, and latency counts from when each request was due, so it
		// grows well past the 25 ms a request takes by itself.
		{"falls behind", 25 * time.Millisecond, 100 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Run(context.Background(), Load{Concurrency: concurrency, Duration: duration, Rate: rate},
				func(ctx context.Context, w, i int) (int, bool) {
					time.Sleep(tt.work)
					return 200, true
				}, nil)
			if max := int(rate * duration.Seconds()); r.Requests > max {
				t.Fatalf("%d requests, more than the %d the rate allows", r.Requests, max)
			}
			if r.Requests < tt.minDone || r.Errors != 0 {
				t.Fatalf("result = %+v", r)
			}
			if r.Max < tt.minMax || r.Max < tt.work {
				t.Fatalf("max latency %v, want at least %v", r.Max, max(tt.minMax, tt.work))
			}
		})
	}
}

// TestRunEnd: what is unanswered when the run's time is up is waited for
// and counted, not dropped — dropped, it would be the slowest of the run.
// Each request here takes its time unless the context ends first, as a
// request on the network does.
func TestRunEnd(t *testing.T) {
	const duration = 300 * time.Millisecond
	tests := []struct {
		name string
		load Load
		// work is how long request i takes.
		work         func(i int) time.Duration
		wantRequests int
		wantMax      time.Duration // at least
	}{
		// Two workers, 400 ms a request, 600 ms: the second of each is in
		// flight at the end.
		{"closed loop, in flight at the end", Load{Concurrency: 2, Duration: 2 * duration},
			func(int) time.Duration { return 400 * time.Millisecond }, 4, 400 * time.Millisecond},
		// One request every 10 ms; the one due at 200 ms stalls for 200 ms,
		// so the 9 due after it, before the end, fall due while it waits:
		// they are sent when it is answered, their latency counted from
		// when each was due.
		{"rate, a stall at the end", Load{Concurrency: 1, Duration: duration, Rate: 100},
			func(i int) time.Duration {
				if i == 20 {
					return 200 * time.Millisecond
				}
				return 0
			}, 30, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Run(context.Background(), tt.load, func(ctx context.Context, w, i int) (int, bool) {
				select {
				case <-time.After(tt.work(i)):
					return 200, true
				case <-ctx.Done():
					return 0, false
				}
			}, nil)
			if r.Requests != tt.wantRequests || r.Errors != 0 || r.Max < tt.wantMax {
				t.Fatalf("%d requests, %d errors, max %v; want %d requests, max at least %v", r.Requests, r.Errors, r.Max, tt.wantRequests, tt.wantMax)
			}
			if r.Elapsed < tt.load.Duration {
				t.Errorf("elapsed %v, less than the run's %v", r.Elapsed, tt.load.Duration)
			}
		})
	}
}

// A request still unanswered at the end of the drain is cut off: not
// counted as a request or an error, but counted as cut off — unless the
// run was ended by its context (an interrupt), which cuts off what is in
// flight without the server being slow.
func TestRunCutOff(t *testing.T) {
	for _, interrupt := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		if interrupt {
			time.AfterFunc(100*time.Millisecond, cancel)
		}
		// Worker 0's requests never get an answer; worker 1's take 1 ms.
		r := Run(ctx, Load{Concurrency: 2, Duration: 200 * time.Millisecond}, func(ctx context.Context, w, i int) (int, bool) {
			d := time.Millisecond
			if w == 0 {
				d = time.Hour
			}
			select {
			case <-time.After(d):
				return 200, true
			case <-ctx.Done():
				return 0, false
			}
		}, nil)
		cancel()
		want := 1
		if interrupt {
			want = 0
		}
		if r.CutOff != want || r.Errors != 0 || r.Requests == 0 || r.Max >= 200*time.Millisecond {
			t.Errorf("interrupted %v: %+v, want %d cut off, no errors, the answered requests only", interrupt, r, want)
		}
	}
}

// A short run still waits a while for the requests in flight at its end:
// a request sent at once that takes 500 ms, in a run of 100 ms, is
// answered, not cut off, as a first request on a busy machine may take
// longer than a smoke run lasts.
func TestRunShortRunDrains(t *testing.T) {
	var sent atomic.Int64
	r := Run(context.Background(), Load{Concurrency: 1, Duration: 100 * time.Millisecond}, func(ctx context.Context, w, i int) (int, bool) {
		sent.Add(1)
		select {
		case <-time.After(500 * time.Millisecond):
			return 200, true
		case <-ctx.Done():
			return 0, false
		}
	}, nil)
	if r.Requests != 1 || r.CutOff != 0 || sent.Load() != 1 {
		t.Fatalf("%d sent, %d requests, %d cut off; want the one request answered", sent.Load(), r.Requests, r.CutOff)
	}
}

// With a rate, a stall at the end cuts off the request stalled and every
// request due before the deadline still waiting behind it at the cutoff:
// one request every 10 ms for 300 ms is 30; the 6th stalls past the 300 ms
// of drain, so 5 are answered and 25 cut off.
func TestRunCutOffRate(t *testing.T) {
	r := Run(context.Background(), Load{Concurrency: 1, Duration: 300 * time.Millisecond, Rate: 100}, func(ctx context.Context, w, i int) (int, bool) {
		if i == 5 {
			<-ctx.Done()
			return 0, false
		}
		return 200, true
	}, nil)
	if r.Requests != 5 || r.CutOff != 25 || r.Errors != 0 {
		t.Fatalf("%d requests, %d cut off, %d errors; want 5, 25, 0", r.Requests, r.CutOff, r.Errors)
	}
}

// A rate so low that a worker's schedule runs past what a time.Duration
// holds sends what falls due within the run, worker 0's first request at
// the start, and nothing else: the schedule's seconds overflowed into
// requests due at once, their latencies ~292 years.
func TestRunTinyRate(t *testing.T) {
	for _, rate := range []float64{1e-300, 5e-324} {
		r := Run(context.Background(), Load{Concurrency: 4, Duration: 200 * time.Millisecond, Rate: rate}, func(ctx context.Context, w, i int) (int, bool) {
			return 200, true
		}, nil)
		if r.Requests != 1 || r.Max > time.Second {
			t.Errorf("rate %g: %d requests, max latency %v; want 1 request, sent at once", rate, r.Requests, r.Max)
		}
	}
}

func TestRunRateStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	// Worker 0's first request is due at once, worker 1's after 20 s and
	// the next ones 40 s apart: the cancel must end those waits. (At 2/s,
	// a cancel timer that fired a second late on a busy machine let the
	// next requests through.)
	r := Run(ctx, Load{Concurrency: 2, Duration: time.Minute, Rate: 0.05}, func(ctx context.Context, w, i int) (int, bool) {
		return 200, true
	}, nil)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Run took %v after its context ended", took)
	}
	if r.Requests != 1 {
		t.Fatalf("%d requests, want the 1 due at the start", r.Requests)
	}
}

// TestPercentile pins what summarize reports while every worker kept all
// of its latencies: nearest rank, the smallest latency that at least pct %
// of them are at or under (of 100, the 99th percentile is the 99th, not the
// largest), however the latencies are spread over the workers.
func TestPercentile(t *testing.T) {
	// split deals 1..n over workers round-robin, in an order of its own
	// (descending), each keeping all of its own.
	split := func(n, workers int) []kept {
		parts := make([]kept, workers)
		for v := n; v >= 1; v-- {
			p := &parts[v%workers]
			p.samples = append(p.samples, time.Duration(v))
			p.n++
			p.max = max(p.max, time.Duration(v))
		}
		return parts
	}
	tests := []struct {
		n                  int
		p50, p90, p99, max time.Duration
	}{
		{1, 1, 1, 1, 1},
		{2, 1, 2, 2, 2},
		{3, 2, 3, 3, 3},
		{10, 5, 9, 10, 10},
		{100, 50, 90, 99, 100}, // p99 not the largest
		{101, 51, 91, 100, 101},
		{1000, 500, 900, 990, 1000},
		{1001, 501, 901, 991, 1001},
		{4_000_003, 2_000_002, 3_600_003, 3_960_003, 4_000_003},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 3, 64} {
			p50, p90, p99, largest := summarize(split(tt.n, workers))
			if p50 != tt.p50 || p90 != tt.p90 || p99 != tt.p99 || largest != tt.max {
				t.Errorf("1..%d over %d workers: %d %d %d %d, want %d %d %d %d", tt.n, workers, p50, p90, p99, largest, tt.p50, tt.p90, tt.p99, tt.max)
			}
		}
	}
}

// Once a worker has seen more latencies than it may keep, it keeps a
// sample, weighted by how many each stands for: a sample of every tenth
// of 1..1000 gives the percentiles of 1..1000 itself. The largest is
// always exact.
func TestSummarizeSampled(t *testing.T) {
	every := func(from, to, step int) []time.Duration {
		var s []time.Duration
		for v := from; v <= to; v += step {
			s = append(s, time.Duration(v))
		}
		return s
	}
	tests := []struct {
		name               string
		parts              []kept
		p50, p90, p99, max time.Duration
	}{
		{"all kept", []kept{{samples: every(1, 1000, 1), n: 1000, max: 1000}}, 500, 900, 990, 1000},
		{"a tenth kept", []kept{{samples: every(10, 1000, 10), n: 1000, max: 1003}}, 500, 900, 990, 1003},
		{"a sampled worker and a whole one", []kept{
			{samples: every(10, 1000, 10), n: 1000, max: 1000},
			{samples: every(1001, 2000, 1), n: 1000, max: 2000},
			{}, // a worker that sent nothing
		}, 1000, 1800, 1980, 2000},
	}
	for _, tt := range tests {
		p50, p90, p99, largest := summarize(tt.parts)
		if p50 != tt.p50 || p90 != tt.p90 || p99 != tt.p99 || largest != tt.max {
			t.Errorf("%s: %d %d %d %d, want %d %d %d %d", tt.name, p50, p90, p99, largest, tt.p50, tt.p90, tt.p99, tt.max)
		}
	}
}

// A run keeps at most maxKept latencies, whatever its length, and still
// counts every request.
func TestRunKeepsBounded(t *testing.T) {
	defer func(n int) { maxKept = n }(maxKept)
	maxKept = 40
	var left atomic.Int64
	left.Store(5000)
	var parts int
	r := Run(context.Background(), Load{Concurrency: 4, Duration: 10 * time.Second}, func(ctx context.Context, w, i int) (int, bool) {
		if left.Add(-1) < 0 {
			return Exhausted, false
		}
		return 200, true
	}, nil)
	if r.Requests != 5000 || !(r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Fatalf("%+v, want 5000 requests and ordered percentiles", r)
	}
	k := kept{}
	for i := range 1000 {
		k.add(time.Duration(i), 10)
		parts = len(k.samples)
	}
	if parts != 10 || k.n != 1000 || k.max != 999 {
		t.Fatalf("kept %d of %d (largest %d), want 10 of 1000, largest 999", parts, k.n, k.max)
	}
}
