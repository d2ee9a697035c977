// Package loadgen drives a request function at a fixed concurrency — as
// fast as answers come back, or at a fixed rate — for a bounded time and
// summarizes what happened: throughput, latency percentiles and failures by
// kind.
package loadgen

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Request performs one request and returns a status for the tally (an
// HTTP status, or 0 for a transport error) and whether it succeeded, or
// Exhausted when it has nothing left to send.
type Request func(ctx context.Context, worker, i int) (status int, ok bool)

// Exhausted is the status of a Request that sent nothing because it has
// nothing left to send (its pre-signed credentials ran out): its worker
// stops, and the call is counted neither as a request nor as an error,
// which, answered at once, would swamp the run's figures. Result.Exhausted
// says it happened; the run's figures cover the time until then.
const Exhausted = -1

// Prepare does request i's client-side work, such as signing again a
// credential that has grown too old, before the request's latency starts
// counting: the request function then only sends, and the run measures the
// server, not the client. It returns Exhausted when there is nothing left
// to send, as a Request would, and 0 otherwise.
type Prepare func(ctx context.Context, worker, i int) (status int)

// Load says how hard Run drives the request function, and what each worker
// does before each request.
type Load struct {
	// Concurrency is the number of workers; each has at most one request
	// in flight.
	Concurrency int
	// Duration bounds the run.
	Duration time.Duration
	// Rate, when positive, is how many requests per second the workers
	// start in all, evenly spaced, whatever the answers take: an open
	// workload, as many independent clients make. Each worker keeps its
	// own schedule, and a request that falls due while the worker still
	// waits on a slow answer has its latency counted from when it was due,
	// not from when it was sent, so that wait is measured instead of
	// omitted — also at the end of the run, when such requests are sent
	// after Duration (see Run). When the server cannot keep up, latencies grow without
	// bound and requests/s falls short of Rate. Zero is a closed loop:
	// each worker sends its next request as soon as the previous one is
	// answered, and the run measures the most the server can do.
	Rate float64
	// Prepare, if set, is called by the worker before each request, with
	// the same worker and i, before the request's latency starts counting:
	// in a closed loop before the clock is read, with a rate once the
	// request has fallen due (after the worker's wait for it, so that a
	// credential Prepare checks does not age during the wait). With a
	// rate, Prepare's work delays the request's start; for a request
	// already due when its worker got to it, whose latency counts from
	// when it was due, that work is counted, as any other delay of a
	// request already due is.
	Prepare Prepare
}

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
	// Exhausted says a worker stopped early: the Request had nothing left
	// to send (Exhausted). Elapsed ends when the last worker stopped.
	Exhausted bool `json:"exhausted,omitempty"`
	// CutOff counts the requests still unanswered at the end of the drain
	// (see Run), and with a rate those due before Duration but not yet
	// sent then, which were cut off: they are in neither Requests nor
	// Errors, and their latency, at least the drain's, in no percentile.
	// A run ended by its context's end (an interrupt) counts none.
	CutOff int `json:"cut_off,omitempty"`
	// Unsent is how many of CutOff were due before Duration and never
	// sent (with a rate the server fell behind on): the others were sent
	// and got no answer by the end of the drain.
	Unsent int `json:"-"`
}

// Run calls req from load.Concurrency workers until load.Duration has
// passed (or ctx ends), and reports. No request is sent after that, but
// those in flight then are waited for and counted, and with a rate so are
// the requests that fell due before it while their worker waited on a slow
// answer: dropped, they would be the slowest of the run. That takes at
// most drain(load.Duration) more; what is still unanswered after it is
// cut off, not counted as a request but in Result.CutOff. progress, if
// set, is called about every 250 ms with the number of requests so far,
// and a last time when every worker has stopped, before Run sorts the
// latencies (which takes a while for millions of them): what the load
// generator did ends there.
func Run(ctx context.Context, load Load, req Request, progress func(done int64, elapsed time.Duration)) Result {
	concurrency := load.Concurrency
	start := time.Now()
	deadline := start.Add(load.Duration)
	cutoff := deadline.Add(drain(load.Duration))
	parent := ctx
	ctx, cancel := context.WithDeadline(ctx, cutoff)
	defer cancel()
	var (
		wg     sync.WaitGroup
		done   atomic.Int64
		mu     sync.Mutex
		parts  []kept
		stats  = map[int]int{}
		errs   int
		empty  atomic.Bool  // a worker's Request was Exhausted
		cut    atomic.Int64 // requests cut off at the end of the drain
		unsent atomic.Int64 // of them, those due and never sent
	)
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
			keep := max(1, maxKept/max(concurrency, 1))
			local := kept{samples: make([]time.Duration, 0, min(4096, keep))}
			localStats := map[int]int{}
			localErrs := 0
			pace := newPacer(load, start, w)
			defer pace.stop()
			// The clock, not only ctx, says when the run is over: on a busy
			// machine ctx's timer can fire late, after connections have
			// already timed out on its deadline.
			next, exhausted := 0, false // next: the first request not sent
			for ; ctx.Err() == nil && time.Now().Before(cutoff); next++ {
				i := next
				if load.Rate <= 0 && !time.Now().Before(deadline) {
					break // a closed loop sends nothing after the deadline
				}
				late, ok := pace.wait(ctx, i, deadline) // with a rate, only what is due before it
				if !ok {
					break
				}
				// Prepare after the wait, so that what it signs does not age
				// during it, and before the clock starts.
				if load.Prepare != nil && load.Prepare(ctx, w, i) == Exhausted {
					empty.Store(true)
					exhausted = true
					break
				}
				t0 := late
				if t0.IsZero() {
					t0 = time.Now()
				}
				status, ok := req(ctx, w, i)
				if status == Exhausted {
					empty.Store(true)
					exhausted = true
					break
				}
				end := time.Now()
				d := end.Sub(t0)
				if !ok && (ctx.Err() != nil || !end.Before(cutoff)) {
					// Cut off at the end of the drain: not counted as a
					// failure of the server, but not dropped unsaid either.
					if parent.Err() == nil {
						cut.Add(1)
					}
					next++
					break
				}
				local.add(d, keep)
				if !ok {
					localErrs++
					localStats[status]++
				}
				done.Add(1)
			}
			if !exhausted && parent.Err() == nil {
				// With a rate, those that fell due before the deadline
				// but were still waiting for their turn at the cutoff are
				// cut off too.
				n := int64(max(0, pace.dueBefore(deadline)-next))
				cut.Add(n)
				unsent.Add(n)
			}
			mu.Lock()
			parts = append(parts, local)
			errs += localErrs
			for k, v := range localStats {
				stats[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	<-stopped // no progress report after Run returns but the last one
	elapsed := time.Since(start)
	if progress != nil {
		progress(done.Load(), elapsed)
	}
	var n int64
	for _, p := range parts {
		n += p.n
	}
	r := Result{Requests: int(n), Errors: errs, Elapsed: elapsed, Exhausted: empty.Load(), CutOff: int(cut.Load()), Unsent: int(unsent.Load())}
	if len(stats) > 0 {
		r.ByStatus = stats
	}
	if elapsed > 0 {
		r.PerSecond = float64(n) / elapsed.Seconds()
	}
	if n > 0 {
		r.P50, r.P90, r.P99, r.Max = summarize(parts)
	}
	return r
}

// maxKept bounds the latencies a run keeps, 32 MiB of them: a long run of
// a fast scenario (verify_warm answers millions a second) would otherwise
// take gigabytes. A variable for tests.
var maxKept = 1 << 22

// kept is one worker's latencies: all of them, or, once there were more
// than it may keep, a uniform random sample of them (reservoir sampling),
// each standing for n / len(samples) of them.
type kept struct {
	samples []time.Duration
	n       int64 // latencies seen
	max     time.Duration
}

// add records d, keeping at most keep samples.
func (k *kept) add(d time.Duration, keep int) {
	k.n++
	k.max = max(k.max, d)
	if len(k.samples) < keep {
		k.samples = append(k.samples, d)
	} else if j := rand.Int64N(k.n); j < int64(keep) {
		k.samples[j] = d
	}
}

// summarize returns the 50th, 90th and 99th percentiles and the largest of
// the workers' latencies, of which there is at least one, by nearest rank:
// the smallest latency that at least pct % of them are at or under (of 100,
// the 99th percentile is the 99th, not the largest). Each kept latency
// counts for as many as it stands for, n / len(samples) of its worker's:
// exact, one each, while every worker kept all of its own, an estimate once
// some worker kept only a sample. The largest is always exact.
func summarize(parts []kept) (p50, p90, p99, largest time.Duration) {
	var total int
	for _, p := range parts {
		total += len(p.samples)
		largest = max(largest, p.max)
	}
	type weighted struct {
		d time.Duration
		w float64
	}
	ws := make([]weighted, 0, total)
	var n float64
	for _, p := range parts {
		if len(p.samples) == 0 {
			continue
		}
		w := float64(p.n) / float64(len(p.samples))
		for _, d := range p.samples {
			ws = append(ws, weighted{d, w})
		}
		n += float64(p.n)
	}
	slices.SortFunc(ws, func(a, b weighted) int { return cmp.Compare(a.d, b.d) })
	at := func(pct int) time.Duration {
		// The tolerance: n × pct / 100 in floating point may come out a
		// hair above the whole rank it is (0.99 × 100 is not exactly 99).
		target, sum := n*float64(pct)/100, 0.0
		for _, s := range ws {
			if sum += s.w; sum >= target*(1-1e-12) {
				return s.d
			}
		}
		return ws[len(ws)-1].d
	}
	return at(50), at(90), at(99), largest
}

// drain is how long Run waits, after a run of duration, for the requests
// in flight at its end (and, with a rate, those due before it): as long as
// the run, at least 2 seconds and at most 10. Without the floor, a short
// run on a busy machine (a 200 ms smoke run, its first requests still
// being answered) had them all cut off, and bench said the server had
// stopped answering. Answered requests end the wait: only a server that
// does not answer makes a run wait for it.
func drain(duration time.Duration) time.Duration {
	return min(max(duration, 2*time.Second), 10*time.Second)
}

// pacer holds a worker to its schedule when the load has a rate.
type pacer struct {
	start    time.Time
	first    float64 // seconds from start to the worker's first request
	interval float64 // seconds between the worker's requests
	timer    *time.Timer
}

func newPacer(load Load, start time.Time, worker int) *pacer {
	if load.Rate <= 0 {
		return &pacer{}
	}
	return &pacer{
		start:    start,
		first:    float64(worker) / load.Rate,
		interval: float64(load.Concurrency) / load.Rate,
	}
}

// wait returns when request i is due, with the time its latency counts
// from if that is already past: with a rate, a request already due when
// the worker gets to it was held up by slow answers before it, and its
// latency counts from when it was due. Otherwise (in a closed loop, or
// when the worker slept until the request fell due) it returns the zero
// Time: latency counts from when the worker is ready to send, after
// Load.Prepare, so a timer that fires late (Go's may, by up to a
// millisecond) is not charged to the server. It returns false when the
// request would be due after deadline or ctx ends first.
func (p *pacer) wait(ctx context.Context, i int, deadline time.Time) (late time.Time, ok bool) {
	if p.interval == 0 {
		return time.Time{}, true
	}
	due, ok := p.due(i, deadline)
	if !ok {
		return time.Time{}, false
	}
	d := time.Until(due)
	if d <= 0 {
		return due, true
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
		return time.Time{}, true
	case <-ctx.Done():
		return time.Time{}, false
	}
}

// due returns when request i falls due, and false when that is not
// before deadline.
func (p *pacer) due(i int, deadline time.Time) (time.Time, bool) {
	// In seconds, compared before they become a Duration: at a rate low
	// enough, they are more than a Duration holds (or, 0 × +Inf, NaN).
	at := p.first
	if i > 0 {
		at += float64(i) * p.interval
	}
	if !(at < deadline.Sub(p.start).Seconds()) {
		return time.Time{}, false
	}
	due := p.start.Add(time.Duration(at * float64(time.Second)))
	return due, due.Before(deadline)
}

// dueBefore returns how many of the worker's requests fall due before
// deadline with a rate (in a closed loop, 0): those due returns true for.
func (p *pacer) dueBefore(deadline time.Time) int {
	if p.interval == 0 {
		return 0
	}
	span := deadline.Sub(p.start).Seconds() - p.first
	if !(span > 0) {
		return 0
	}
	n := int(min(math.Ceil(span/p.interval), 1<<40)) // about right; made exact below
	for n > 0 {
		if _, ok := p.due(n-1, deadline); ok {
			break
		}
		n--
	}
	for {
		if _, ok := p.due(n, deadline); !ok {
			return n
		}
		n++
	}
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
