package throttle

import (
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
