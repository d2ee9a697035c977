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
