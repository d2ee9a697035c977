package throttle

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(1, 3, 100, func() time.Time { return now })
	if ok, _ := l.Check("a"); !ok {
		t.Fatal("a fresh key is held back")
	}
	for range 3 {
		l.Fail("a")
	}
	ok, wait := l.Check("a")
	if ok || wait < time.Second || wait > 2*time.Second {
		t.Fatalf("after a burst of failures: ok=%v wait=%v, want held back about 1s", ok, wait)
	}
	if ok, _ := l.Check("b"); !ok {
		t.Fatal("another key is held back by a's failures")
	}
	now = now.Add(1500 * time.Millisecond)
	if ok, _ := l.Check("a"); !ok {
		t.Fatal("the key is still held back after its bucket refilled")
	}
}

func TestBounded(t *testing.T) {
	now := time.Now()
	l := New(1, 1, 10, func() time.Time { return now })
	for i := range 100 {
		l.Fail(string(rune(i)))
	}
	if len(l.m) > 10 {
		t.Fatalf("%d keys tracked, want at most 10", len(l.m))
	}
}

// A Recorder records a key's first throttled refusal and then one a
// RecordEvery, each key on its own.
func TestRecorder(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRecorder(100, func() time.Time { return now })
	for _, tt := range []struct {
		name    string
		advance time.Duration
		key     string
		want    bool
	}{
		{name: "first", key: "a", want: true},
		{name: "again at once", key: "a", want: false},
		{name: "another key", key: "b", want: true},
		{name: "within the minute", advance: RecordEvery - time.Second, key: "a", want: false},
		{name: "a minute on", advance: time.Second, key: "a", want: true},
		{name: "and again at once", key: "a", want: false},
	} {
		now = now.Add(tt.advance)
		if got := r.Record(tt.key); got != tt.want {
			t.Errorf("%s: Record(%q) = %v, want %v", tt.name, tt.key, got, tt.want)
		}
	}
}

// Take lets a key fail as often as its budget allows and no more, however
// many callers fail at once: Check then Fail let every caller that checked
// before the first failed through.
func TestTake(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const burst, callers = 5, 64
	l := New(1, burst, 100, func() time.Time { return now })
	var (
		wg     sync.WaitGroup
		taken  atomic.Int32
		waited atomic.Int64
	)
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			ok, wait := l.Take("a")
			if ok {
				taken.Add(1)
			} else {
				waited.Store(int64(wait))
			}
		})
	}
	close(start)
	wg.Wait()
	if got := taken.Load(); got != burst {
		t.Fatalf("%d of %d callers at once took a failure, want the burst, %d", got, callers, burst)
	}
	if w := time.Duration(waited.Load()); w != time.Second {
		t.Errorf("a refused caller is told to wait %v, want 1s", w)
	}
	now = now.Add(time.Second)
	if ok, _ := l.Take("a"); !ok {
		t.Error("a second later the key may not fail once more")
	}
	if ok, _ := l.Take("a"); ok {
		t.Error("the key failed twice within its one refilled try")
	}
	if ok, _ := l.Take("b"); !ok {
		t.Error("another key is held back by a's failures")
	}
}

// A Budget records a key's first AuditBurst refusals and then AuditRate a
// second, each key on its own, and the first it records after some it did
// not says how many.
func TestBudget(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := NewBudget(100, func() time.Time { return now })
	for _, tt := range []struct {
		name           string
		advance        time.Duration
		key            string
		n              int // refusals at once
		recorded, last int // how many recorded; the last recorded one's unrecorded
	}{
		{name: "a flood", key: "a", n: 50, recorded: AuditBurst},
		{name: "another key", key: "b", n: 1, recorded: 1},
		{name: "a second on", advance: time.Second, key: "a", n: 3, recorded: AuditRate, last: 50 - AuditBurst},
		{name: "and again", advance: time.Second, key: "a", n: 1, recorded: 1, last: 2},
		{name: "quiet since", advance: time.Minute, key: "a", n: 1, recorded: 1},
	} {
		now = now.Add(tt.advance)
		recorded, last := 0, -1
		for range tt.n {
			if ok, u, _ := b.Take(tt.key); ok {
				recorded++
				last = u
			}
		}
		if recorded != tt.recorded || last != tt.last {
			t.Errorf("%s: recorded %d, the last saying %d unrecorded; want %d and %d", tt.name, recorded, last, tt.recorded, tt.last)
		}
	}
}

// A Budget tracks at most its maxKeys keys' counts.
func TestBudgetBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := NewBudget(10, func() time.Time { return now })
	for i := range 1000 {
		for range AuditBurst + 1 {
			b.Take(fmt.Sprint(i))
		}
	}
	if n, m := len(b.skipped), len(b.l.m); n > 10 || m > 10 {
		t.Errorf("tracks %d counts and %d buckets, want at most 10", n, m)
	}
}

// A Budget records at most AuditAllBurst refusals at once and AuditAllRate
// a second of all its keys together, each key within its own budget, and
// the first it records after some the shared budget did not says how many
// ("unrecorded_all"), whatever their keys; a key's own count is only of
// the refusals its own budget did not let through.
func TestBudgetAcrossKeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := NewBudget(100_000, func() time.Time { return now })
	for _, tt := range []struct {
		name              string
		advance           time.Duration
		keys, each        int // how many keys (fresh ones), refusals of each at once
		recorded, lastAll int // how many recorded; the last recorded one's unrecordedAll
	}{
		{name: "many keys, each within its budget", keys: 50, each: 10, recorded: AuditAllBurst},
		{name: "a second on", advance: time.Second, keys: 1, each: 1, recorded: 1, lastAll: 50*10 - AuditAllBurst},
		{name: "the rest of that second", keys: 100, each: 1, recorded: AuditAllRate - 1},
		{name: "a minute on", advance: time.Minute, keys: 1, each: 1, recorded: 1, lastAll: 100 - (AuditAllRate - 1)},
	} {
		now = now.Add(tt.advance)
		recorded, lastAll := 0, -1
		for k := range tt.keys {
			key := fmt.Sprintf("%s %d", tt.name, k)
			for range tt.each {
				if ok, u, all := b.Take(key); ok {
					recorded++
					lastAll = all
					if u != 0 {
						t.Errorf("%s: key %q's own budget did not let %d through", tt.name, key, u)
					}
				}
			}
		}
		if recorded != tt.recorded || lastAll != tt.lastAll {
			t.Errorf("%s: recorded %d, the last saying %d unrecorded_all; want %d and %d", tt.name, recorded, lastAll, tt.recorded, tt.lastAll)
		}
	}
}
